/**
 * `npm start`: the demo upstream on 127.0.0.1:3000 and Palisade on the bundled
 * example (proxy :8000, admin/status 127.0.0.1:8001). Extra arguments go to
 * `palisade start` (e.g. `npm start -- --listen 127.0.0.1:9000`). Ctrl-C stops both.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startDemoUpstream } from '../examples/quickstart/demo-upstream.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const port = Number(process.env.DEMO_UPSTREAM_PORT ?? 3000);
const upstream = await startDemoUpstream(port).catch((err: NodeJS.ErrnoException) => {
  console.error(`quickstart: cannot start the demo upstream on 127.0.0.1:${port} (${err.code}); free the port or set DEMO_UPSTREAM_PORT`);
  process.exit(1);
});
console.error(`quickstart: demo upstream on http://127.0.0.1:${port}`);
console.error('quickstart: starting Palisade on http://localhost:8000 — try: curl -i http://localhost:8000/api/hello');
const gateway = spawn(process.execPath, [`${root}bin/palisade.js`, 'start', '--config', `${root}examples/quickstart/palisade.yaml`, ...process.argv.slice(2)], { stdio: 'inherit' });
const stop = (signal: NodeJS.Signals) => gateway.kill(signal);
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
gateway.on('exit', (code) => {
  upstream.close();
  process.exit(code ?? 0);
});

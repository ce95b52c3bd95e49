/**
 * `npm start`: the demo upstream on 127.0.0.1:3000 and Palisade on the bundled
 * example (proxy :8000, admin/status 127.0.0.1:8001). Ctrl-C stops both.
 *
 * Other ports: DEMO_UPSTREAM_PORT moves the demo upstream (the example config
 * is then run from a temporary copy pointing at it); extra arguments go to
 * `palisade start` (e.g. `npm start -- --listen 127.0.0.1:9000 --admin-listen
 * 127.0.0.1:9001`), and so do PALISADE_LISTEN / PALISADE_ADMIN_LISTEN.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDemoUpstream } from '../examples/quickstart/demo-upstream.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const example = join(root, 'examples', 'quickstart', 'palisade.yaml');
const EXAMPLE_UPSTREAM = 'http://127.0.0.1:3000';

const port = Number(process.env.DEMO_UPSTREAM_PORT ?? 3000);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`quickstart: DEMO_UPSTREAM_PORT must be a port number, not '${process.env.DEMO_UPSTREAM_PORT}'`);
  process.exit(2);
}
const upstream = await startDemoUpstream(port).catch((err: NodeJS.ErrnoException) => {
  console.error(`quickstart: cannot start the demo upstream on 127.0.0.1:${port} (${err.code}); free the port or set DEMO_UPSTREAM_PORT`);
  process.exit(1);
});
console.error(`quickstart: demo upstream on http://127.0.0.1:${port}`);

// The example names the demo upstream's default address; another port needs a copy of the file.
let config = example;
let tmp: string | null = null;
if (port !== 3000) {
  const text = readFileSync(example, 'utf8');
  if (!text.includes(EXAMPLE_UPSTREAM)) throw new Error(`${example} no longer points at ${EXAMPLE_UPSTREAM}; update scripts/quickstart.ts`);
  tmp = mkdtempSync(join(tmpdir(), 'palisade-quickstart-'));
  config = join(tmp, 'palisade.yaml');
  writeFileSync(config, text.replaceAll(EXAMPLE_UPSTREAM, `http://127.0.0.1:${port}`));
  console.error(`quickstart: running a copy of ${example} pointing at port ${port}: ${config} (edits to the example are not picked up while DEMO_UPSTREAM_PORT is set)`);
}

/** The proxy address palisade will use: --listen, else PALISADE_LISTEN, else the example's 0.0.0.0:8000. */
function listenAddress(args: string[]): string {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--listen' && args[i + 1]) return args[i + 1]!;
    if (args[i]!.startsWith('--listen=')) return args[i]!.slice('--listen='.length);
  }
  return process.env.PALISADE_LISTEN ?? '0.0.0.0:8000';
}

const args = process.argv.slice(2);
const listen = listenAddress(args);
const url = `http://${listen.replace(/^(0\.0\.0\.0|\[::\]):/, 'localhost:')}`;
console.error(`quickstart: starting Palisade on ${url} — try: curl -i ${url}/api/hello`);
const gateway = spawn(process.execPath, [join(root, 'bin', 'palisade.js'), 'start', '--config', config, ...args], { stdio: 'inherit' });

// Forward a stop signal once: a terminal's Ctrl-C also reaches the gateway directly (same process group).
let forwarded = false;
const stop = (signal: NodeJS.Signals) => {
  if (forwarded) return;
  forwarded = true;
  gateway.kill(signal);
};
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
gateway.on('exit', (code, signal) => {
  upstream.close();
  upstream.closeAllConnections();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  if (signal) console.error(`quickstart: Palisade was killed by ${signal}`);
  process.exit(code ?? 1);
});

/**
 * Not a proxy: a bare node:http server answering like the upstream ("ok\n").
 * The ceiling of any Node HTTP server on this machine and Node version: a proxy
 * does this work plus an upstream exchange, so expect well under half of it.
 *
 *   node bench/peers/node-hello.ts --port 8080
 *
 * Self-contained on purpose (no local imports): see minimal-undici.ts.
 */
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '8080' },
    upstream: { type: 'string' }, // accepted like the other peers, unused
  },
});

const BODY = Buffer.from('ok\n');
const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
  res.end(BODY);
});
server.keepAliveTimeout = 65_000;
server.listen(Number(values.port), values.host, () => {
  process.stdout.write(`node-hello listening on ${values.host}:${values.port}\n`);
});

function shutdown(): void {
  server.close();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

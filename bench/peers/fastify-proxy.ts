/**
 * @fastify/http-proxy with its defaults (undici, keep-alive) in front of the upstream.
 *
 *   node bench/peers/fastify-proxy.ts --port 8080 --upstream http://127.0.0.1:9000
 *
 * Self-contained on purpose (no local imports): see minimal-undici.ts.
 */
import { parseArgs } from 'node:util';
import Fastify from 'fastify';
import proxy from '@fastify/http-proxy';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '8080' },
    upstream: { type: 'string', default: 'http://127.0.0.1:9000' },
  },
});

const app = Fastify({ logger: false });
await app.register(proxy, { upstream: values.upstream, http2: false });
await app.listen({ host: values.host, port: Number(values.port) });
process.stdout.write(`fastify-proxy listening on ${values.host}:${values.port} -> ${values.upstream}\n`);

function shutdown(): void {
  void app.close().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

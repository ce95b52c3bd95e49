/**
 * node-http-proxy (http-proxy) with a keep-alive agent in front of the upstream.
 *
 *   node bench/peers/http-proxy.ts --port 8080 --upstream http://127.0.0.1:9000
 *
 * Self-contained on purpose (no local imports): see minimal-undici.ts.
 * http-proxy ships no types and @types/http-proxy is not installed: the small
 * part of its API used here is typed locally.
 */
import http from 'node:http';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

interface ProxyServer {
  web(req: http.IncomingMessage, res: http.ServerResponse): void;
  on(event: 'error', listener: (err: Error, req: http.IncomingMessage, res: http.ServerResponse | import('node:net').Socket) => void): ProxyServer;
}
interface HttpProxyModule {
  createProxyServer(options: { target: string; agent?: http.Agent; xfwd?: boolean; changeOrigin?: boolean }): ProxyServer;
}

const require = createRequire(import.meta.url);
const httpProxy = require('http-proxy') as HttpProxyModule;

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '8080' },
    upstream: { type: 'string', default: 'http://127.0.0.1:9000' },
  },
});

const agent = new http.Agent({ keepAlive: true, maxSockets: 128, maxFreeSockets: 128, keepAliveMsecs: 1000 });
const proxy = httpProxy.createProxyServer({ target: values.upstream, agent, changeOrigin: true });
proxy.on('error', (_err, _req, res) => {
  if (res instanceof http.ServerResponse) {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain', connection: 'close' });
    res.end('bad gateway\n');
  } else {
    res.destroy();
  }
});

const server = http.createServer((req, res) => proxy.web(req, res));
server.keepAliveTimeout = 65_000;
server.listen(Number(values.port), values.host, () => {
  process.stdout.write(`http-proxy listening on ${values.host}:${values.port} -> ${values.upstream}\n`);
});

function shutdown(): void {
  server.close();
  agent.destroy();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

/**
 * The quick start's demo upstream: answers every request with a JSON echo of
 * what it received (method, path, headers, body), so you can see what the
 * gateway forwards.
 */
import { createServer, type Server } from 'node:http';

export function startDemoUpstream(port = 3000, host = '127.0.0.1'): Promise<Server> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.stringify({ service: 'demo', method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') }, null, 2) + '\n';
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  return new Promise((ok, fail) => server.once('error', fail).listen(port, host, () => ok(server)));
}

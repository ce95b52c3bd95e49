/**
 * Real log collectors on 127.0.0.1 for the log plugins' tests: an HTTP
 * collector (node:http, can stall or fail on demand), a TCP line collector
 * (node:net) and a UDP listener (node:dgram).
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import { createSocket } from 'node:dgram';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';

export interface HttpCollector {
  url: string;
  port: number;
  /** Requests received, in arrival order. */
  received: { method: string; url: string; headers: IncomingHttpHeaders; body: string }[];
  /** Every log record received (a JSON array body counts each element). */
  records(): any[];
  /** 'ok': answer 200; 'stall': read the request, never answer; 'fail': answer 500. */
  mode: 'ok' | 'stall' | 'fail';
  close(): Promise<void>;
}

export async function startHttpCollector(mode: HttpCollector['mode'] = 'ok'): Promise<HttpCollector> {
  const received: HttpCollector['received'] = [];
  const held: ServerResponse[] = [];
  const c = {} as HttpCollector;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      if (c.mode === 'stall') return void held.push(res);
      received.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(c.mode === 'fail' ? 500 : 200, { 'content-type': 'text/plain' });
      res.end(c.mode === 'fail' ? 'collector down' : 'ok');
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  const port = (server.address() as AddressInfo).port;
  Object.assign(c, {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    mode,
    records: () => received.flatMap((r) => {
      const v = JSON.parse(r.body);
      return Array.isArray(v) ? v : [v];
    }),
    close: () =>
      new Promise<void>((ok) => {
        for (const r of held) r.destroy();
        server.closeAllConnections();
        server.close(() => ok());
      }),
  });
  return c;
}

export interface LineCollector {
  port: number;
  /** Complete lines received, across connections. */
  lines: string[];
  connections: number;
  close(): Promise<void>;
}

/** A TCP server that collects newline-terminated lines (on `port`, or a free one). */
export async function startTcpCollector(port = 0): Promise<LineCollector> {
  const c = { lines: [] as string[], connections: 0 } as LineCollector;
  const sockets = new Set<Socket>();
  const server = createTcpServer((sock) => {
    c.connections++;
    sockets.add(sock);
    let rest = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      rest += d;
      let nl: number;
      while ((nl = rest.indexOf('\n')) >= 0) {
        c.lines.push(rest.slice(0, nl));
        rest = rest.slice(nl + 1);
      }
    });
    sock.on('error', () => {});
    sock.on('close', () => sockets.delete(sock));
  });
  await new Promise<void>((ok) => server.listen(port, '127.0.0.1', () => ok()));
  c.port = (server.address() as AddressInfo).port;
  c.close = () =>
    new Promise<void>((ok) => {
      for (const s of sockets) s.destroy();
      server.close(() => ok());
    });
  return c;
}

export interface DatagramCollector {
  port: number;
  messages: string[];
  close(): Promise<void>;
}

export async function startUdpCollector(): Promise<DatagramCollector> {
  const sock = createSocket('udp4');
  const messages: string[] = [];
  sock.on('message', (m) => messages.push(m.toString('utf8')));
  await new Promise<void>((ok) => sock.bind(0, '127.0.0.1', () => ok()));
  return { port: sock.address().port, messages, close: () => new Promise<void>((ok) => sock.close(() => ok())) };
}

/**
 * Test harness: real gateway instances and real upstream servers on 127.0.0.1.
 * Nothing is mocked: requests go through sockets, the router, the plugin chain
 * and undici pools exactly as in production.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { parseConfig } from '../../src/config/load.ts';
import { Gateway } from '../../src/core/gateway.ts';

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** Source port of the connection (the gateway's side of the upstream connection). */
  remotePort: number;
}

export interface TestUpstream {
  url: string;
  port: number;
  requests: SeenRequest[];
  close(): Promise<void>;
}

export type UpstreamHandler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

/** Real node:http server on 127.0.0.1:0. Default handler: 200 JSON echo of { method, url, headers, body }. */
export async function startUpstream(handler?: UpstreamHandler): Promise<TestUpstream> {
  const requests: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const seen = { method: req.method!, url: req.url!, headers: req.headers, body, remotePort: req.socket.remotePort! };
      requests.push(seen);
      if (handler) return handler(req, res, body);
      const text = JSON.stringify(seen);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

export interface TestGateway {
  url: string;
  port: number;
  /** https://127.0.0.1:port when the config has certificates. */
  tlsUrl: string | null;
  gateway: Gateway;
  accessLog: Record<string, unknown>[];
  /** The gateway's own log lines (JSON objects). */
  logs: Record<string, unknown>[];
  reload(config: object): Promise<void>;
  close(): Promise<void>;
}

function withTestServer(config: object): string {
  const c = structuredClone(config) as Record<string, unknown>;
  c._format_version ??= '3.0';
  c.server = { access_log: 'off', watch: false, ...(c.server as object | undefined) };
  return JSON.stringify(c);
}

/** A real gateway on 127.0.0.1:0 from a declarative config object. Rejects with the config errors when invalid. */
export async function startGateway(config: object): Promise<TestGateway> {
  const cfg = parseConfig(withTestServer(config), 'test-config');
  const logs: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const gateway = new Gateway(cfg, log);
  const accessLog: Record<string, unknown>[] = [];
  gateway.accessLog.onRecord = (r) => accessLog.push(r);
  const bound = await gateway.listen({ listen: '127.0.0.1:0', tlsListen: cfg.certificates.length ? '127.0.0.1:0' : 'off' });
  return {
    url: `http://127.0.0.1:${bound.http!.port}`,
    port: bound.http!.port,
    tlsUrl: bound.https ? `https://127.0.0.1:${bound.https.port}` : null,
    gateway,
    accessLog,
    logs,
    async reload(next: object) {
      const res = gateway.apply(parseConfig(withTestServer(next), 'test-config'));
      if (!res.ok) throw res.error;
    },
    close: () => gateway.shutdown(1000),
  };
}

/**
 * Transports for log plugins: a TCP (optionally TLS) connection kept open
 * between sends and closed after `keepalive` ms of idleness (tcp-log, syslog
 * over TCP), and a UDP sender (syslog over UDP). Sends reject on failure so
 * the LogQueue retries them; nothing here ever throws into a request.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

export interface StreamTarget {
  readonly host: string;
  readonly port: number;
  /** Connect and write timeout (ms). */
  readonly timeout: number;
  /** Close the connection after this long without a send (ms). */
  readonly keepalive: number;
  readonly tls?: boolean;
  /** SNI (and the name the certificate is checked against) for TLS; default: host. */
  readonly servername?: string;
  /** Verify the server certificate (TLS). */
  readonly verify?: boolean;
}

export class StreamSender {
  readonly #t: StreamTarget;
  #socket: Socket | null = null;
  #connecting: Promise<Socket> | null = null;
  #closed = false;

  constructor(target: StreamTarget) {
    this.#t = target;
  }

  #connect(): Promise<Socket> {
    if (this.#socket !== null && !this.#socket.destroyed) return Promise.resolve(this.#socket);
    return (this.#connecting ??= new Promise<Socket>((resolve, reject) => {
      const t = this.#t;
      const sock: Socket = t.tls
        ? tlsConnect({ host: t.host, port: t.port, servername: t.servername ?? (isIp(t.host) ? undefined : t.host), rejectUnauthorized: t.verify ?? true })
        : netConnect({ host: t.host, port: t.port });
      const ready = t.tls ? 'secureConnect' : 'connect';
      const timer = setTimeout(() => sock.destroy(new Error(`connect to ${t.host}:${t.port} timed out after ${t.timeout} ms`)), t.timeout);
      const fail = (err: Error) => {
        clearTimeout(timer);
        this.#connecting = null;
        reject(err);
      };
      sock.once('error', fail);
      sock.once(ready, () => {
        clearTimeout(timer);
        sock.off('error', fail);
        this.#connecting = null;
        if (this.#closed) {
          sock.destroy();
          return reject(new Error('closed'));
        }
        sock.setNoDelay(true);
        sock.setTimeout(t.keepalive, () => sock.end());
        sock.on('error', () => {}); // surfaced to the next send as a destroyed socket
        sock.on('close', () => {
          if (this.#socket === sock) this.#socket = null;
        });
        // Whatever the server sends back is not ours to read.
        sock.resume();
        this.#socket = sock;
        resolve(sock);
      });
    }));
  }

  /** Write `data`; resolves once the kernel took it, rejects on failure or after `timeout` ms. */
  async send(data: string): Promise<void> {
    if (this.#closed) throw new Error('closed');
    const sock = await this.#connect();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`write to ${this.#t.host}:${this.#t.port} timed out after ${this.#t.timeout} ms`));
      }, this.#t.timeout);
      sock.write(data, (err) => {
        clearTimeout(timer);
        if (err) {
          sock.destroy();
          reject(err);
        } else resolve();
      });
    });
  }

  close(): void {
    this.#closed = true;
    this.#socket?.end();
    this.#socket = null;
  }
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

/** Datagrams to host:port (one message per datagram). */
export class DatagramSender {
  readonly #host: string;
  readonly #port: number;
  #socket: UdpSocket | null = null;

  constructor(host: string, port: number) {
    this.#host = host;
    this.#port = port;
  }

  send(message: string | Buffer): Promise<void> {
    const sock = (this.#socket ??= createSocket(this.#host.includes(':') ? 'udp6' : 'udp4').on('error', () => {}));
    sock.unref();
    return new Promise((resolve, reject) => sock.send(message, this.#port, this.#host, (err) => (err ? reject(err) : resolve())));
  }

  close(): void {
    this.#socket?.close();
    this.#socket = null;
  }
}

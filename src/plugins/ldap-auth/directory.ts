/**
 * The LDAP side of ldap-auth: simple binds (and the optional group search)
 * over a small pool of ldapts connections kept `keepalive` ms, plain, ldaps
 * or StartTLS.
 *
 * A bind answered with an LDAP result code (invalidCredentials, noSuchObject,
 * unwillingToPerform …) is a refusal; anything else (connection refused, TLS
 * failure, timeout, a broken socket) is an outage and throws. A StartTLS
 * connection that drops is never re-opened in clear text: the socket factory
 * refuses a second connect, so the password never leaves unencrypted.
 */
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { Client, EqualityFilter, ResultCodeError } from 'ldapts';

/** RFC 4514 §2.4: escape a value for use in a DN (no DN injection through the username). */
export function escapeDnValue(value: string): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    const code = value.charCodeAt(i);
    if (code === 0) out += '\\00';
    else if (ch === '"' || ch === '+' || ch === ',' || ch === ';' || ch === '<' || ch === '>' || ch === '\\' || ch === '=') out += '\\' + ch;
    else if ((i === 0 && (ch === ' ' || ch === '#')) || (i === value.length - 1 && ch === ' ')) out += '\\' + ch;
    else if (code < 0x20 || code === 0x7f) out += '\\' + code.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out;
}

export interface DirectoryOptions {
  host: string;
  port: number;
  ldaps: boolean;
  startTls: boolean;
  verify: boolean;
  ca: string[] | undefined;
  /** Milliseconds for connect and for each operation. */
  timeout: number;
  /** Milliseconds an idle connection is kept (0 = none). */
  keepalive: number;
  group: { baseDn: string; memberAttribute: string; nameAttribute: string } | null;
}

export type BindOutcome = { ok: true; groups: string[] | null } | { ok: false; code: number };

/** Idle connections kept at most (more concurrent binds open more, closed after use). */
const MAX_IDLE = 8;

/** A client and whether its socket (plain, TLS or upgraded) is still open. */
interface Conn {
  readonly client: Client;
  alive: boolean;
  timer: NodeJS.Timeout | null;
}

/** A connection-level failure (not an LDAP answer). */
function isOutage(err: unknown): boolean {
  return !(err instanceof ResultCodeError);
}

export class Directory {
  readonly #o: DirectoryOptions;
  readonly #url: string;
  readonly #tls: ConnectionOptions;
  readonly #idle: Conn[] = [];

  constructor(o: DirectoryOptions) {
    this.#o = o;
    const bracketed = isIP(o.host) === 6 ? `[${o.host}]` : o.host;
    this.#url = `${o.ldaps ? 'ldaps' : 'ldap'}://${bracketed}:${o.port}`;
    this.#tls = {
      host: o.host,
      ...(isIP(o.host) === 0 ? { servername: o.host } : {}),
      rejectUnauthorized: o.verify,
      ...(o.ca && o.ca.length > 0 ? { ca: o.ca } : {}),
      minVersion: 'TLSv1.2',
    };
  }

  /** Bind as `dn` with `password`; with a group search configured, the user's groups too. Throws on an outage. */
  async bind(dn: string, password: string): Promise<BindOutcome> {
    // A pooled connection may have been closed by the server meanwhile: one retry on a fresh one.
    const pooled = this.#take();
    if (pooled !== null) {
      try {
        return await this.#bindOn(pooled, dn, password);
      } catch (err) {
        if (!isOutage(err)) throw err;
      }
    }
    return this.#bindOn(await this.#open(), dn, password);
  }

  async #bindOn(conn: Conn, dn: string, password: string): Promise<BindOutcome> {
    const client = conn.client;
    let reusable = false;
    try {
      try {
        await client.bind(dn, password);
      } catch (err) {
        if (err instanceof ResultCodeError) {
          reusable = true;
          return { ok: false, code: err.code };
        }
        throw err;
      }
      const groups = this.#o.group === null ? null : await this.#groups(client, dn);
      reusable = true;
      return { ok: true, groups };
    } finally {
      this.#release(conn, reusable);
    }
  }

  async #groups(client: Client, dn: string): Promise<string[]> {
    const g = this.#o.group!;
    const res = await client.search(g.baseDn, {
      scope: 'sub',
      filter: new EqualityFilter({ attribute: g.memberAttribute, value: dn }),
      attributes: [g.nameAttribute],
      sizeLimit: 1000,
    });
    const names: string[] = [];
    for (const entry of res.searchEntries) {
      for (const [k, v] of Object.entries(entry)) {
        if (k.toLowerCase() !== g.nameAttribute.toLowerCase()) continue;
        for (const name of Array.isArray(v) ? v : [v]) {
          const s = Buffer.isBuffer(name) ? name.toString('utf8') : String(name);
          if (s !== '' && !names.includes(s)) names.push(s);
        }
      }
    }
    return names;
  }

  async #open(): Promise<Conn> {
    const o = this.#o;
    let connects = 0;
    // The sockets are watched here: after StartTLS ldapts no longer notices its connection closing.
    // Unreferenced: idle directory connections never keep a stopping gateway alive.
    const watch = <S extends Socket | TLSSocket>(s: S): S => {
      s.once('close', () => (conn.alive = false));
      s.unref();
      return s;
    };
    const client = new Client({
      url: this.#url,
      timeout: o.timeout,
      connectTimeout: o.timeout,
      strictDN: false,
      ...(o.ldaps ? { tlsOptions: { ...this.#tls } } : {}),
      createConnection: ((port: number, host: string): Socket => {
        // StartTLS: a dropped connection must not be re-opened in clear text by the client.
        if (o.startTls && connects++ > 0) throw new Error('StartTLS connection to the LDAP server was lost');
        return watch(netConnect(port, host));
      }) as typeof netConnect,
      createSecureConnection: ((...args: unknown[]) => watch((tlsConnect as (...a: unknown[]) => TLSSocket)(...args))) as typeof tlsConnect,
    });
    const conn: Conn = { client, alive: true, timer: null };
    if (o.startTls) {
      try {
        await client.startTLS({ ...this.#tls });
      } catch (err) {
        this.#release(conn, false);
        throw err;
      }
    }
    return conn;
  }

  #take(): Conn | null {
    while (this.#idle.length > 0) {
      const c = this.#idle.pop()!;
      if (c.timer) clearTimeout(c.timer);
      c.timer = null;
      if (c.alive && c.client.isConnected) return c;
      this.#close(c);
    }
    return null;
  }

  #release(conn: Conn, reusable: boolean): void {
    if (!reusable || this.#o.keepalive <= 0 || !conn.alive || !conn.client.isConnected || this.#idle.length >= MAX_IDLE) {
      this.#close(conn);
      return;
    }
    conn.timer = setTimeout(() => {
      const i = this.#idle.indexOf(conn);
      if (i >= 0) this.#idle.splice(i, 1);
      this.#close(conn);
    }, this.#o.keepalive);
    conn.timer.unref();
    this.#idle.push(conn);
  }

  /** Close every idle connection (the config version using this directory is retired). */
  closeIdle(): void {
    for (const c of this.#idle.splice(0)) {
      if (c.timer) clearTimeout(c.timer);
      this.#close(c);
    }
  }

  #close(conn: Conn): void {
    conn.alive = false;
    conn.client.unbind().catch(() => {});
  }

  /** Close every idle connection. */
  close(): void {
    for (const c of this.#idle.splice(0)) {
      if (c.timer) clearTimeout(c.timer);
      this.#close(c);
    }
  }
}

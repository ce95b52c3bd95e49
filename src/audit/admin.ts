/**
 * Admin API requests as audit events (docs/audit.md): one per request past the
 * open endpoints, once it is answered. The path is clipped (the query string is
 * never recorded); GET /config?secrets=include is marked as a read of the
 * secrets. Refused requests (401) are aggregated per client address: the first
 * is recorded at once, the ones after it within DENY_WINDOW_MS are counted and
 * recorded as one (`count`) when the window is over — at most one record per
 * address per window, so a flood of unauthenticated requests cannot flood the
 * trail.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { clipPath, type AdminAuditEvent } from './entries.ts';

export const DENY_WINDOW_MS = 10_000;
/** Addresses tracked at once; refusals from further ones are counted together (address "*"). */
const MAX_ADDRESSES = 10_000;

interface Refused {
  /** When the last record for this address was made. */
  at: number;
  /** Refusals since, not recorded yet, and the last of them. */
  count: number;
  last: AdminAuditEvent | null;
}

export class AdminAuditor {
  readonly #sink: (e: AdminAuditEvent) => void;
  readonly #windowMs: number;
  readonly #refused = new Map<string, Refused>();
  #timer: NodeJS.Timeout | null = null;

  constructor(sink: (e: AdminAuditEvent) => void, windowMs = DENY_WINDOW_MS) {
    this.#sink = sink;
    this.#windowMs = windowMs;
  }

  /** Record `req` when its answer is sent (or its connection closes). */
  track(req: IncomingMessage, res: ServerResponse, url: { pathname: string; searchParams: URLSearchParams }): void {
    const ip = req.socket.remoteAddress ?? '';
    res.once('close', () => {
      const method = req.method ?? '';
      const path = clipPath(url.pathname);
      const status = res.statusCode;
      if (status === 401) return this.#refuse({ ip, method, path, status, allowed: false, reason: req.headers.authorization ? 'an invalid admin token' : 'no admin token' });
      const secrets = method === 'GET' && url.pathname === '/config' && url.searchParams.get('secrets') === 'include';
      const reason = secrets
        ? `${method} ${path}?secrets=include answered ${status}${status === 200 ? ': the config was read with its secrets' : ''}`
        : `${method} ${path} answered ${status}`;
      this.#sink({ ip, method, path, status, allowed: true, reason, ...(secrets ? { secrets: true } : {}) });
    });
  }

  #refuse(e: AdminAuditEvent): void {
    const now = Date.now();
    const key = this.#refused.has(e.ip) || this.#refused.size < MAX_ADDRESSES ? e.ip : '*';
    const r = this.#refused.get(key);
    if (r === undefined || (r.count === 0 && now - r.at >= this.#windowMs)) {
      this.#refused.set(key, { at: now, count: 0, last: null });
      this.#sink({ ...e, count: 1 });
      this.#timer ??= setInterval(() => this.#sweep(false), Math.min(1000, this.#windowMs)).unref();
      return;
    }
    r.count++;
    r.last = e;
  }

  /** Record what was counted for addresses whose window is over (all of them when `all`); forget quiet addresses. */
  #sweep(all: boolean): void {
    const now = Date.now();
    for (const [key, r] of this.#refused) {
      if (!all && now - r.at < this.#windowMs) continue;
      if (r.count > 0) {
        const last = r.last!;
        const reason = `${r.count} more admin request${r.count === 1 ? '' : 's'} refused since ${new Date(r.at).toISOString()} (the last: ${last.reason})`;
        this.#sink({ ...last, ip: key, reason, count: r.count });
        this.#refused.set(key, { at: now, count: 0, last: null });
      } else this.#refused.delete(key);
    }
    if (this.#refused.size === 0 && this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
  }

  /** Record what is still counted (the admin listener closes). */
  flush(): void {
    this.#sweep(true);
    this.#refused.clear();
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}

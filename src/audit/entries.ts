/**
 * What the audit trail records (docs/audit.md). Every entry has the same
 * frame — type, time, id (the request id / transaction id), actor, subject,
 * decision, reason — and the writer adds seq and prev when it chains it.
 */
import { randomUUID } from 'node:crypto';
import type { RequestContext } from '../core/context.ts';

export interface AuditEntry {
  /** decision (a security decision on a request), config (a config change), admin (an admin API request), start, rotate, checkpoint, gap (records dropped). */
  type: 'decision' | 'config' | 'admin' | 'start' | 'rotate' | 'checkpoint' | 'gap';
  /** ISO 8601, UTC, milliseconds. */
  time: string;
  /** The request id (X-Request-Id, also sent upstream) or, for other events, a transaction id. */
  id: string;
  actor: Record<string, string | number | boolean | null>;
  subject: Record<string, string | number | null>;
  decision: string;
  reason: string;
  [extra: string]: unknown;
}

/** The security decisions of a finished request, one entry each (those whose outcome is in `outcomes`). */
export function decisionEntries(ctx: RequestContext, outcomes: ReadonlySet<string>): AuditEntry[] {
  const decisions = ctx.decisions;
  const out: AuditEntry[] = [];
  if (decisions.length === 0) return out;
  const time = new Date().toISOString();
  const route = ctx.routeRuntime;
  const consumer = ctx.consumer;
  for (const d of decisions) {
    if (!outcomes.has(d.outcome)) continue;
    out.push({
      type: 'decision',
      time,
      id: ctx.requestId,
      actor: { ip: ctx.clientIp, consumer: consumer ? (consumer.username ?? consumer.custom_id ?? consumer.id) : null },
      subject: {
        service: route ? (route.service.ref.name ?? route.service.ref.id) : null,
        route: route ? (route.ref.name ?? route.ref.id) : null,
        method: ctx.method,
        host: ctx.host,
        // The path only: query strings can carry secrets.
        path: ctx.path,
      },
      plugin: d.plugin,
      decision: d.outcome,
      reason: d.reason,
      status: d.status,
    });
  }
  return out;
}

/** A config change (reload from the file, admin API sync). */
export function configEntry(e: { actor: string; action: string; outcome: 'applied' | 'unchanged' | 'rejected'; reason: string; version: string | null; previous: string | null; file: string | null }): AuditEntry {
  return {
    type: 'config',
    time: new Date().toISOString(),
    id: randomUUID(),
    actor: { admin: e.actor },
    subject: { config_file: e.file, action: e.action },
    decision: e.outcome,
    reason: e.reason,
    version: e.version,
    previous_version: e.previous,
  };
}

/** An admin API request past the open endpoints, once answered (src/audit/admin.ts builds them). */
export interface AdminAuditEvent {
  ip: string;
  method: string;
  /** The path only (never the query string), clipped to ADMIN_PATH_MAX characters. */
  path: string;
  status: number;
  /** A valid token was shown. */
  allowed: boolean;
  reason: string;
  /** GET /config?secrets=include: the config was asked for with its secrets. */
  secrets?: boolean;
  /** Refused requests: how many the record stands for (they are aggregated per client address). */
  count?: number;
}

export const ADMIN_PATH_MAX = 200;

/** A request path as recorded: at most ADMIN_PATH_MAX characters (then "…"), never splitting a surrogate pair. */
export function clipPath(path: string): string {
  if (path.length <= ADMIN_PATH_MAX) return path;
  const c = path.charCodeAt(ADMIN_PATH_MAX - 1);
  const end = c >= 0xd800 && c <= 0xdbff ? ADMIN_PATH_MAX - 1 : ADMIN_PATH_MAX;
  return `${path.slice(0, end)}…`;
}

/** An admin API request: allowed (a valid token) or denied (401), with its answer. */
export function adminEntry(e: AdminAuditEvent): AuditEntry {
  const entry: AuditEntry = {
    type: 'admin',
    time: new Date().toISOString(),
    id: randomUUID(),
    actor: { ip: e.ip, admin: e.allowed },
    subject: { method: e.method, path: clipPath(e.path) },
    decision: e.allowed ? 'allow' : 'deny',
    reason: e.reason,
    status: e.status,
  };
  if (e.secrets) entry.subject.secrets = 'include';
  if (e.count !== undefined) entry.count = e.count;
  return entry;
}

/** The outcome of a config change attempt as an entry (result of a reload or an admin sync). */
export function configChange(
  actor: string,
  action: 'reload' | 'sync',
  file: string | null,
  previous: string,
  res: { ok: true; version: string } | { ok: false; errors: readonly string[] },
): AuditEntry {
  if (!res.ok) {
    const n = res.errors.length;
    return configEntry({ actor, action, outcome: 'rejected', reason: `${n} error${n === 1 ? '' : 's'}: ${res.errors[0] ?? 'unknown'}`, version: null, previous, file });
  }
  const changed = res.version !== previous;
  return configEntry({ actor, action, outcome: changed ? 'applied' : 'unchanged', reason: changed ? `config version ${res.version} replaces ${previous}` : 'the config did not change', version: res.version, previous, file });
}

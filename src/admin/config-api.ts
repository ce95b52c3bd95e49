/**
 * The config endpoints of the admin API (GitOps):
 * - GET /config[?format=yaml|json][&secrets=include] — the running config, secrets masked unless asked;
 * - POST /config/diff — body: a config file (YAML or JSON); what would change, validated like a reload;
 * - PUT /config — body: a config file; validated and compiled beside the running config, written to
 *   the gateway's config file (atomically), swapped in; nothing changes on any error.
 * Masked values in a body keep the gateway's current value (src/admin/keep-masked.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { diffConfigs, type ConfigDiff } from '../config/diff.ts';
import { ConfigInvalidError, formatError } from '../config/load.ts';
import type { PalisadeConfig } from '../config/schema.ts';
import { PersistError, serializeConfig, textFor, writeFileAtomic } from './config-file.ts';
import { BodyError, problem, readText, send } from './http.ts';
import { parseKeepingMasked } from './keep-masked.ts';
import { redactConfig } from './redact.ts';
import type { AdminBackend, AdminUrl } from './server.ts';

/** Settings read once at start: a sync that changes them says so. */
const RESTART_ONLY: [string, string][] = [
  ['server', 'listen'], ['server', 'tls_listen'], ['server', 'admin_listen'], ['server', 'workers'], ['server', 'access_log'], ['server', 'log_level'], ['admin', 'token'],
];

function restartNotes(current: PalisadeConfig, next: PalisadeConfig): string[] {
  const get = (c: PalisadeConfig, s: string, k: string) => JSON.stringify((c as unknown as Record<string, Record<string, unknown>>)[s]?.[k]);
  return RESTART_ONLY.filter(([s, k]) => get(current, s, k) !== get(next, s, k)).map(([s, k]) => `${s}.${k} changed: it takes effect at the next restart`);
}

function invalid(res: ServerResponse, err: ConfigInvalidError): void {
  problem(res, 400, 'Bad Request', `the config is invalid (${err.errors.length} error${err.errors.length === 1 ? '' : 's'}); nothing was changed`, {
    errors: err.errors,
    lines: err.errors.map((e) => formatError(err.file, e)),
  });
}

/** The request body, or null when an answer (413, 415) was sent. */
async function body(req: IncomingMessage, res: ServerResponse): Promise<string | null> {
  try {
    return await readText(req);
  } catch (err) {
    if (!(err instanceof BodyError)) throw err;
    res.shouldKeepAlive = false;
    problem(res, err.status, err.status === 413 ? 'Content Too Large' : 'Unsupported Media Type', err.message);
    return null;
  }
}

/** The text validated like a file reload (masked values kept from `current`), or null when the errors were sent. */
function parse(text: string, current: PalisadeConfig, res: ServerResponse): { config: PalisadeConfig; text: string } | null {
  try {
    return parseKeepingMasked(text, current, '<request>');
  } catch (err) {
    if (!(err instanceof ConfigInvalidError)) throw err;
    invalid(res, err);
    return null;
  }
}

export function getConfig(backend: AdminBackend, res: ServerResponse, url: AdminUrl): void {
  const format = url.searchParams.get('format') ?? 'json';
  const secrets = url.searchParams.get('secrets') ?? 'mask';
  if (format !== 'json' && format !== 'yaml') return problem(res, 400, 'Bad Request', "format must be 'json' or 'yaml'");
  if (secrets !== 'mask' && secrets !== 'include') return problem(res, 400, 'Bad Request', "secrets must be 'mask' or 'include'");
  const cfg = secrets === 'include' ? backend.config() : redactConfig(backend.config());
  if (format === 'json') return send(res, 200, cfg);
  send(res, 200, serializeConfig(cfg, 'yaml'), 'application/yaml; charset=utf-8');
}

export async function diffConfig(backend: AdminBackend, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const text = await body(req, res);
  if (text === null) return;
  const current = backend.config();
  const next = parse(text, current, res);
  if (next) send(res, 200, diffConfigs(current, next.config) satisfies ConfigDiff);
}

export async function putConfig(backend: AdminBackend, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const file = backend.configFile;
  if (file === null) {
    req.resume();
    return problem(res, 409, 'Conflict', 'this gateway runs without a config file, so a sync could not persist; nothing was changed');
  }
  const text = await body(req, res);
  if (text === null) return;
  await backend.exclusive(async () => {
    const current = backend.config();
    const next = parse(text, current, res);
    if (!next) return;
    const diff = diffConfigs(current, next.config);
    const r = await backend.commit(next.config, () => writeFileAtomic(file, textFor(file, next.text)));
    if (r.ok) return send(res, 200, { ...diff, version: r.version, file, notes: restartNotes(current, next.config) });
    if (r.error instanceof ConfigInvalidError) return invalid(res, r.error);
    if (r.error instanceof PersistError) return problem(res, 500, 'Internal Server Error', `${r.error.message}; nothing was changed`);
    problem(res, 400, 'Bad Request', `the config does not compile: ${r.error.message}; nothing was changed`);
  });
}

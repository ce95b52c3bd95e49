/**
 * The config endpoints of the admin API (GitOps):
 * - GET /config[?format=yaml|json][&secrets=include] — the running config, secrets masked unless asked;
 * - POST /config/diff — body: a config file (YAML or JSON); what would change, validated like a reload;
 * - PUT /config — body: a config file; validated and compiled beside the running config, written to
 *   the gateway's config file (atomically), swapped in; nothing changes on any error. With workers,
 *   answered once every worker said it applied it (else 500 naming the ones that did not).
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

/** Settings read once at start, per section ('*': the whole section): a sync that changes them says so. */
const RESTART_ONLY: [string, string[] | '*'][] = [
  ['server', ['listen', 'tls_listen', 'admin_listen', 'workers', 'access_log', 'log_level']],
  ['admin', ['token']],
  ['audit', '*'],
];

function restartNotes(current: PalisadeConfig, next: PalisadeConfig): string[] {
  const section = (c: PalisadeConfig, s: string) => (c as unknown as Record<string, Record<string, unknown> | undefined>)[s] ?? {};
  return RESTART_ONLY.flatMap(([s, keys]) => {
    const [a, b] = [section(current, s), section(next, s)];
    const fields = keys === '*' ? [...new Set([...Object.keys(a), ...Object.keys(b)])] : keys;
    return fields.filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).map((k) => `${s}.${k} changed: it takes effect at the next restart`);
  });
}

/** One worker that did not apply a config the primary sent it. */
export interface WorkerFailure {
  worker: number;
  pid: number | undefined;
  error: string;
}

/**
 * From AdminBackend.commit with --workers N: the config was validated,
 * persisted and is the primary's (a restarted worker gets it), but these
 * workers did not apply it — they still run the previous version.
 */
export class WorkersFailedError extends Error {
  readonly version: string;
  readonly failed: WorkerFailure[];
  readonly workers: number;
  /** One line per worker: which, and why. */
  readonly lines: string[];
  constructor(version: string, failed: WorkerFailure[], workers: number) {
    const lines = failed.map((f) => `worker ${f.worker} (pid ${f.pid ?? '?'}) did not apply config version ${version}: ${f.error}`);
    super(lines.join('; '));
    this.lines = lines;
    this.version = version;
    this.failed = failed;
    this.workers = workers;
  }
}

function partial(res: ServerResponse, err: WorkersFailedError, file: string, body: object): void {
  const ran = err.workers - err.failed.length;
  problem(res, 500, 'Internal Server Error',
    `${err.message}. The config was written to ${file} and runs on ${ran} of ${err.workers} workers; the others still run the previous config. ` +
      'Find the cause in the gateway log, then sync again (only the workers that missed it are retried) or restart the gateway (every worker then starts from the written file)',
    { ...body, version: err.version, file, workers: err.workers, failed_workers: err.failed });
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
  const text = await body(req, res);
  if (text === null) return;
  await backend.exclusive(async () => {
    const current = backend.config();
    const next = parse(text, current, res);
    if (!next) return;
    const diff = diffConfigs(current, next.config);
    const r = await backend.commit(next.config, () => writeFileAtomic(file, textFor(file, next.text)));
    const notes = restartNotes(current, next.config);
    if (r.ok) return send(res, 200, { ...diff, version: r.version, file, notes });
    if (r.error instanceof WorkersFailedError) return partial(res, r.error, file, { ...diff, notes });
    if (r.error instanceof ConfigInvalidError) return invalid(res, r.error);
    if (r.error instanceof PersistError) return problem(res, 500, 'Internal Server Error', `${r.error.message}; nothing was changed`);
    problem(res, 400, 'Bad Request', `the config does not compile: ${r.error.message}; nothing was changed`);
  });
}

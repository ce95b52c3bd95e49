/**
 * Which audit trail a process uses. One chain per gateway: a single process
 * writes it itself; with --workers N the primary writes it and the workers
 * forward their records over the cluster IPC channel (batched per event-loop
 * turn), so records of all workers, config changes and admin requests form
 * ONE chain in ONE file — what an investigator verifies. (Per-worker chains
 * would need N keys' worth of bookkeeping and an unordered merge; the IPC cost
 * is one message per batch.)
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { AuditConfig } from '../config/schema.ts';
import type { RequestContext } from '../core/context.ts';
import type { GatewayMetrics } from '../telemetry/metrics.ts';
import { decisionEntries, type AuditEntry } from './entries.ts';
import { AuditWriter, type AuditTrail } from './writer.ts';

export type { AuditTrail } from './writer.ts';

interface AuditMessage {
  type: 'palisade:audit';
  entries: AuditEntry[];
}

/** Worker side: records go to the primary's writer. */
export class AuditForwarder implements AuditTrail {
  readonly #outcomes: ReadonlySet<string>;
  #batch: AuditEntry[] = [];
  #scheduled = false;

  constructor(cfg: AuditConfig) {
    this.#outcomes = new Set(cfg.decisions);
  }

  request(ctx: RequestContext): void {
    for (const e of decisionEntries(ctx, this.#outcomes)) this.record(e);
  }

  record(entry: AuditEntry): void {
    entry.worker_pid = process.pid;
    this.#batch.push(entry);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => void this.#flush());
  }

  #flush(): Promise<void> {
    this.#scheduled = false;
    const entries = this.#batch;
    this.#batch = [];
    if (entries.length === 0 || !process.connected) return Promise.resolve();
    // Resolves once the message is handed to the IPC channel (before a worker exits at shutdown).
    return new Promise<void>((resolve) => process.send!({ type: 'palisade:audit', entries } satisfies AuditMessage, undefined, {}, () => resolve()));
  }

  close(): Promise<void> {
    return this.#flush();
  }
}

/** Primary side: append what a worker forwards. */
export function serveAudit(trail: AuditTrail, worker: Worker): void {
  worker.on('message', (msg: AuditMessage) => {
    if (msg?.type !== 'palisade:audit' || !Array.isArray(msg.entries)) return;
    for (const e of msg.entries) trail.record(e);
  });
}

/** The audit trail of this process for the config's audit section, or null when it is off. `metrics`: where the writer counts dropped records and write errors. */
export function openAuditTrail(cfg: AuditConfig, log: Logger, metrics?: GatewayMetrics): AuditTrail | null {
  if (!cfg.enabled) return null;
  return cluster.isWorker ? new AuditForwarder(cfg) : AuditWriter.open(cfg, log, metrics);
}

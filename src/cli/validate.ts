import { pino } from 'pino';
import { ConfigInvalidError, formatError, loadConfigFile } from '../config/load.ts';
import type { PalisadeConfig } from '../config/schema.ts';
import { PoolRegistry } from '../core/pools.ts';
import { RuntimeConfig } from '../core/runtime.ts';
import { MemoryCounterStore } from '../shared-state/memory.ts';

/** Compile the config as a start would (plugins built, keys parsed), then throw it away. */
export async function dryCompile(cfg: PalisadeConfig): Promise<void> {
  const pools = new PoolRegistry();
  const counters = new MemoryCounterStore();
  try {
    new RuntimeConfig(cfg, pools, pino({ level: 'silent' }), null, counters).dispose();
  } finally {
    counters.close();
    await pools.closeAll();
  }
}

export async function validateCommand(file: string, opts: { json?: boolean }): Promise<void> {
  try {
    const cfg = await loadConfigFile(file);
    await dryCompile(cfg);
    const routes = cfg.services.reduce((n, s) => n + s.routes.length, 0) + cfg.routes.length;
    if (opts.json) console.log(JSON.stringify({ valid: true, file, services: cfg.services.length, routes }));
    else console.log(`${file}: valid (${cfg.services.length} services, ${routes} routes, ${cfg.consumers.length} consumers)`);
  } catch (err) {
    if (!(err instanceof ConfigInvalidError)) throw err;
    if (opts.json) console.log(JSON.stringify({ valid: false, file, errors: err.errors }));
    else if (err.errors.length === 1 && err.errors[0]!.line === 0) {
      console.error(`palisade: cannot read the config file ${file}: ${err.errors[0]!.message}`); // not a place in the file
    } else {
      for (const e of err.errors) console.error(formatError(file, e));
      console.error(`${file}: ${err.errors.length} error${err.errors.length === 1 ? '' : 's'}; fix them and run 'palisade config validate ${file}' again`);
    }
    process.exitCode = 1;
  }
}

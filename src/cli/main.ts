/**
 * The `palisade` command. Exit codes: 0 success, 1 failure (invalid config,
 * runtime error), 2 usage error. Commands are imported when they run, so
 * --help and usage errors answer without loading the gateway.
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { parseListen } from '../core/server.ts';
import { VERSION } from './version.ts';

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number ≥ 1');
  return n;
}

/** HOST:PORT or off, checked while parsing so a typo is a usage error (exit 2), not a failed start. */
function listenSpec(v: string): string {
  let at: { host: string; port: number } | null;
  try {
    at = parseListen(v);
  } catch {
    throw new InvalidArgumentError('expected HOST:PORT (e.g. 127.0.0.1:8000, [::1]:8000) or off');
  }
  if (at !== null && (at.port > 65535 || at.host === '')) throw new InvalidArgumentError('the port must be 0–65535');
  return v;
}

const program = new Command()
  .name('palisade')
  .description('Palisade API security gateway')
  .version(VERSION, '-V, --version')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();

program
  .command('start')
  .description('start the gateway (proxy :8000/:8443, admin/status on loopback :8001)')
  .option('-c, --config <file>', 'declarative config file (YAML or JSON) [env PALISADE_CONFIG]', process.env.PALISADE_CONFIG ?? 'palisade.yaml')
  .option('--listen <host:port|off>', 'HTTP proxy listener [env PALISADE_LISTEN] (default 0.0.0.0:8000)', listenSpec)
  .option('--tls-listen <host:port|off>', 'HTTPS proxy listener [env PALISADE_TLS_LISTEN] (default 0.0.0.0:8443)', listenSpec)
  .option('--admin-listen <host:port|off>', 'admin/status listener [env PALISADE_ADMIN_LISTEN] (default 127.0.0.1:8001)', listenSpec)
  .option('--workers <n>', 'worker processes [env PALISADE_WORKERS] (default: CPU cores)', positiveInt)
  .action(async (opts) => (await import('./start.ts')).startCommand(opts));

const config = program.command('config').description('work with declarative config files');
config
  .command('validate')
  .description('check a config file; prints every error as FILE:LINE:COLUMN: PATH: MESSAGE')
  .argument('<file>', 'config file (YAML or JSON)')
  .option('--json', 'print the result as JSON')
  .action(async (file: string, opts) => (await import('./validate.ts')).validateCommand(file, opts));

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help, --version and `palisade help` exit 0; help shown because a command is missing
    // (`palisade`, `palisade config`: commander.help with exit code 1) is a usage error like the rest.
    const ok = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || (err.code === 'commander.help' && err.exitCode === 0);
    process.exit(ok ? 0 : 2);
  }
  console.error(`palisade: ${(err as Error).message}`);
  process.exit(1);
}

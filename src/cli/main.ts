/**
 * The `palisade` command. Exit codes: 0 success, 1 failure (invalid config,
 * runtime error), 2 usage error.
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { startCommand } from './start.ts';
import { validateCommand } from './validate.ts';
import { VERSION } from './version.ts';

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number ≥ 1');
  return n;
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
  .option('--listen <host:port|off>', 'HTTP proxy listener [env PALISADE_LISTEN] (default 0.0.0.0:8000)')
  .option('--tls-listen <host:port|off>', 'HTTPS proxy listener [env PALISADE_TLS_LISTEN] (default 0.0.0.0:8443)')
  .option('--admin-listen <host:port|off>', 'admin/status listener [env PALISADE_ADMIN_LISTEN] (default 127.0.0.1:8001)')
  .option('--workers <n>', 'worker processes [env PALISADE_WORKERS] (default: CPU cores)', positiveInt)
  .action(startCommand);

const config = program.command('config').description('work with declarative config files');
config
  .command('validate')
  .description('check a config file; prints every error as FILE:LINE:COLUMN: PATH: MESSAGE')
  .argument('<file>', 'config file (YAML or JSON)')
  .option('--json', 'print the result as JSON')
  .action(validateCommand);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exit(err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help' ? 0 : 2);
  }
  console.error(`palisade: ${(err as Error).message}`);
  process.exit(1);
}

/**
 * The `palisade` command. Exit codes: 0 success, 1 failure (invalid config,
 * runtime error), 2 usage error (and, for `config diff`, "different"). Commands are imported when they run, so
 * --help and usage errors answer without loading the gateway.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
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

/** The running gateway's admin API: --admin URL, --token (both also from the environment). */
function adminOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--admin <url>', "the gateway's admin API").env('PALISADE_ADMIN_URL').default('http://127.0.0.1:8001'))
    .addOption(new Option('--token <token>', 'admin token (prefer the variable: a flag shows in the process list)').env('PALISADE_ADMIN_TOKEN'));
}
adminOptions(
  config
    .command('diff')
    .description('what `config sync FILE` would change on the running gateway, or what changes from file A to file B; secrets masked; exit 0 same, 2 different, 1 error')
    .argument('<file>', 'config file (YAML or JSON); with a second file: the old one')
    .argument('[new-file]', 'compare the two files locally instead of against the gateway')
    .option('--json', 'print the diff as JSON')
    // Exit 2 is also "different": say plainly that nothing was compared (a diff always ends with 'no changes' or 'N changes: …').
    .showHelpAfterError("palisade config diff: usage error, nothing was compared (exit 2 here is not 'different'); usage: palisade config diff FILE | OLD NEW [--json] [--admin URL] [--token TOKEN]; see --help"),
).action(async (a: string, b: string | undefined, opts) => (await import('./config/diff.ts')).diffCommand(b === undefined ? [a] : [a, b], opts));
adminOptions(
  config
    .command('sync')
    .description("make the running gateway run FILE: validated and compiled like a reload, written to the gateway's config file, swapped in atomically; nothing changes on error")
    .argument('<file>', 'config file (YAML or JSON)')
    .option('--json', 'print the result as JSON'),
).action(async (file: string, opts) => (await import('./config/sync.ts')).syncCommand(file, opts));
adminOptions(
  config
    .command('dump')
    .description("write the running gateway's config (or FILE as loaded, defaults filled); secrets masked unless --include-secrets")
    .argument('[file]', 'dump this config file instead of the running config')
    .option('-o, --output <file>', 'write to this file (atomically) instead of stdout')
    .addOption(new Option('--format <format>', 'output format').choices(['yaml', 'json']).default('yaml'))
    .option('--include-secrets', 'write secrets in clear (keys, passwords, tokens, private keys)'),
).action(async (file: string | undefined, opts) => (await import('./config/dump.ts')).dumpCommand(file, opts));

program
  .command('lint')
  .description('lint an OpenAPI document with Spectral (spectral:oas, OWASP API Top 10) and the project ruleset; exit 1 when a finding reaches --fail-severity, 2 when a file cannot be read')
  .argument('<spec>', 'OpenAPI document (YAML or JSON)')
  .option('--ruleset <file>', `project ruleset (Spectral format) [default: ./.palisade-rules.yaml when present]`)
  .addOption(new Option('-f, --format <format>', 'output format').choices(['text', 'json', 'sarif']).default('text'))
  .addOption(new Option('--fail-severity <severity>', 'exit 1 when a finding is at or above it').choices(['error', 'warn', 'info', 'hint']).default('error'))
  .action(async (spec: string, opts) => (await import('./lint.ts')).lintCommand(spec, opts));

program
  .command('openapi2config')
  .description('generate Palisade config from an OpenAPI 3.0/3.1 document (services, routes, oas-validation, auth plugins, x-palisade-* extensions); exit 1 when it cannot be converted, 2 when it cannot be read')
  .argument('<spec>', 'OpenAPI document (YAML or JSON file, or URL)')
  .option('-o, --output <file>', 'write the config here (YAML; JSON when the name ends in .json) instead of stdout')
  .option('--server <url|index>', "upstream URL for every service instead of the document's servers, or the index of the document server to use (default 0)")
  .option('--merge <file>', 'a Palisade config (listeners, consumers, global plugins …) the generated services are added to')
  .option('--spec-path <path>', 'how the oas-validation plugin names the document (api_spec_file, resolved against the working directory of palisade start; default: <spec> as given)')
  .option('--no-validation', 'leave out the oas-validation plugin')
  .option('--allow-unenforced-security', 'serve routes whose security schemes no Palisade plugin enforces (oauth2, openIdConnect, mutualTLS, cookie API keys …) unauthenticated, with warnings, instead of answering 401')
  .action(async (spec: string, opts) => (await import('./openapi2config.ts')).openapi2configCommand(spec, opts));

program
  .command('mock')
  .description('serve a mock of an OpenAPI 3.0/3.1 API: examples or values generated from the schemas, Prefer: code=…, example=…, dynamic=true, requests validated; runs until Ctrl-C (exit 0); exit 1 when the document is unusable or the address is taken, 2 when it cannot be read')
  .argument('<spec>', 'OpenAPI document (YAML or JSON file, or URL)')
  .option('--listen <host:port>', 'address to serve on (default 127.0.0.1:4010)', listenSpec)
  .option('--no-validation', 'answer without validating requests')
  .action(async (spec: string, opts) => (await import('./mock.ts')).mockCommand(spec, opts));

const audit = program.command('audit').description('the tamper-evident audit trail (docs/audit.md)');
audit
  .command('verify')
  .description('verify audit log files: hash chain, checkpoint signatures, rotation, tail; exit 0 intact, 1 tampered or incomplete (prints FILE:LINE: seq N: what is wrong), 2 usage error')
  .argument('<files...>', 'audit log files (the current one and rotated ones, any order)')
  .requiredOption('--key <pub>', 'Ed25519 public key (PEM) that signs the checkpoints; repeat for keys used over time', (v: string, prev: string[] = []) => [...prev, v])
  .option('--require-final-checkpoint', 'the log must end with the final checkpoint of a clean shutdown')
  .option('--allow-unsigned-tail', 'accept records after the last checkpoint (a log still being written)')
  .option('--allow-gaps', 'accept gap records (records the gateway dropped when it could not write the log); they are reported')
  .option('--from-seq <n>', "verify a log whose start is not given (older files deleted): the seq of the anchor record, audit_seq of an 'audit checkpoint' line of the gateway log")
  .option('--from-hash <sha256>', 'with --from-seq: the hash of that record, audit_head of the same line')
  .option('--json', 'print the result as JSON')
  .action(async (files: string[], opts) => (await import('./audit.ts')).verifyCommand(files, opts));
audit
  .command('keygen')
  .description('write an Ed25519 key pair: PREFIX.key (audit.signing_key) and PREFIX.pub (audit verify --key)')
  .option('--out <prefix>', 'file name prefix', 'palisade-audit')
  .option('--force', 'replace existing files')
  .action(async (opts) => (await import('./audit.ts')).keygenCommand(opts));

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

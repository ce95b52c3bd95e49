/**
 * `palisade lint SPEC`: exit 0 when no finding reaches --fail-severity, 1 when
 * one does, 2 when the document or the ruleset cannot be read (usage error).
 * Findings on stdout; progress and errors on stderr.
 */
import { existsSync } from 'node:fs';
import { failsAt, formatLint, lintSpec, SpecUnreadableError, type OutputFormat, type SeverityName } from '../openapi/lint.ts';
import { PROJECT_RULESET, RulesetError } from '../openapi/ruleset.ts';

export interface LintOptions {
  ruleset?: string;
  format: OutputFormat;
  failSeverity: SeverityName;
}

export async function lintCommand(spec: string, opts: LintOptions): Promise<void> {
  const ruleset = opts.ruleset ?? (existsSync(PROJECT_RULESET) ? PROJECT_RULESET : null);
  if (process.stderr.isTTY) console.error(`palisade lint: ${spec} (rulesets: spectral:oas, owasp${ruleset ? `, ${ruleset}` : ''})…`);
  let result;
  try {
    result = await lintSpec(spec, ruleset);
  } catch (err) {
    if (!(err instanceof SpecUnreadableError || err instanceof RulesetError)) throw err;
    console.error(`palisade: ${err.message}`);
    process.exitCode = 2;
    return;
  }
  process.stdout.write(formatLint(result, opts.format, opts.failSeverity) + '\n');
  process.exitCode = failsAt(result.findings, opts.failSeverity) ? 1 : 0;
}

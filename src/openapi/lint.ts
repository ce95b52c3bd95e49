/**
 * `palisade lint`: Spectral over an OpenAPI (or AsyncAPI) document with the
 * built-in rulesets (spectral:oas, OWASP API Security Top 10) and the
 * project's own ruleset (policy as code, see ruleset.ts). Findings are
 * formatted as text, JSON (Spectral's shape) or SARIF 2.1.0.
 */
import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, extname, join, resolve } from 'node:path';
import spectralCore, { type ISpectralDiagnostic } from '@stoplight/spectral-core';
import Parsers from '@stoplight/spectral-parsers';
import { json as jsonFormatter, sarif as sarifFormatter } from '@stoplight/spectral-formatters';
import { loadRuleset } from './ruleset.ts';

const { Spectral, Document } = spectralCore;

/** Spectral's DiagnosticSeverity: error 0, warn 1, info 2, hint 3 (lower is more severe). */
export const SEVERITIES = ['error', 'warn', 'info', 'hint'] as const;
export type SeverityName = (typeof SEVERITIES)[number];
export const OUTPUT_FORMATS = ['text', 'json', 'sarif'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export type Finding = ISpectralDiagnostic;

export interface LintResult {
  /** The document as named by the caller. */
  file: string;
  findings: Finding[];
  ruleset: InstanceType<typeof spectralCore.Ruleset>;
}

export class SpecUnreadableError extends Error {
  override name = 'SpecUnreadableError';
}

/** The engine's version, reported in SARIF as the tool's version (spectral-core does not export its package.json). */
const SPECTRAL_VERSION = (() => {
  try {
    const main = createRequire(import.meta.url).resolve('@stoplight/spectral-core');
    return (JSON.parse(readFileSync(join(dirname(main), '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();

/** Lint one document. `rulesetFile` null: built-in rulesets only. Throws SpecUnreadableError, RulesetError. */
export async function lintSpec(file: string, rulesetFile: string | null): Promise<LintResult> {
  const ruleset = await loadRuleset(rulesetFile);
  const path = resolve(file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new SpecUnreadableError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const spectral = new Spectral();
  spectral.setRuleset(ruleset);
  const parser = extname(path).toLowerCase() === '.json' ? Parsers.Json : Parsers.Yaml;
  const findings = await spectral.run(new Document(text, parser as never, path));
  findings.sort(
    (a, b) =>
      (a.source ?? '').localeCompare(b.source ?? '') ||
      a.range.start.line - b.range.start.line ||
      a.range.start.character - b.range.start.character ||
      a.severity - b.severity ||
      String(a.code).localeCompare(String(b.code)),
  );
  return { file, findings, ruleset };
}

/** True when a finding is at or above the severity (error > warn > info > hint). */
export function failsAt(findings: Finding[], severity: SeverityName): boolean {
  const limit = SEVERITIES.indexOf(severity);
  return findings.some((f) => f.severity <= limit);
}

/** The name a finding's source is shown under: the caller's spelling for the linted file itself. */
function shownSource(r: LintResult, source: string | undefined): string {
  if (source === undefined || source === resolve(r.file)) return r.file;
  return source;
}

function formatText(r: LintResult): string {
  if (r.findings.length === 0) return `${r.file}: no problems found`;
  const lines = r.findings.map((f) => {
    const at = `${shownSource(r, f.source)}:${f.range.start.line + 1}:${f.range.start.character + 1}`;
    const where = f.path.length ? `  (${f.path.join('.')})` : '';
    return `${at}  ${SEVERITIES[f.severity] ?? f.severity}  ${f.code}  ${f.message}${where}`;
  });
  const counts = SEVERITIES.map((s, i) => [s, r.findings.filter((f) => f.severity === i).length] as const)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s === 'warn' ? 'warning' : s === 'info' ? 'info' : s}${n === 1 || s === 'info' ? '' : 's'}`);
  lines.push(`${r.file}: ${r.findings.length} problem${r.findings.length === 1 ? '' : 's'} (${counts.join(', ')})`);
  return lines.join('\n');
}

/** The findings in the requested output format (SARIF 2.1.0 and JSON from @stoplight/spectral-formatters). */
export function formatLint(r: LintResult, format: OutputFormat, failSeverity: SeverityName = 'error'): string {
  if (format === 'text') return formatText(r);
  const findings = r.findings.map((f) => ({ ...f, source: shownSource(r, f.source) }));
  const options = { failSeverity: SEVERITIES.indexOf(failSeverity) as 0 };
  if (format === 'json') return jsonFormatter(findings, options);
  // The SARIF rule list: the rules that ran, each with a description (node-sarif-builder refuses an empty one).
  const rules = Object.fromEntries(
    Object.entries(r.ruleset.rules)
      .filter(([, rule]) => rule.enabled)
      .map(([name, rule]) => [name, { name, description: rule.description || rule.message || name, documentationUrl: rule.documentationUrl }]),
  );
  return sarifFormatter(findings, options, { ruleset: { rules } as never, spectralVersion: SPECTRAL_VERSION });
}

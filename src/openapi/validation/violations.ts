/**
 * A violation of the document by a request or response: where (location,
 * name, JSON pointer inside the value) and what — never the offending value,
 * so no secret from a header, cookie or credential ends up in an answer or a log.
 */
import type { ErrorObject } from 'ajv';
import { escapeToken } from '../pointer.ts';
import { TEXT_FORM } from './schemas.ts';

export type ViolationLocation = 'operation' | 'path' | 'query' | 'header' | 'cookie' | 'security' | 'content-type' | 'body' | 'status';

export interface Violation {
  readonly in: ViolationLocation;
  /** The parameter, header or form field concerned, when there is one. */
  readonly name?: string;
  /** JSON pointer inside the value ('' = the value itself). */
  readonly pointer: string;
  readonly message: string;
}

/** Names taken from the request (unknown parameters, properties) are shortened. */
export function clip(name: string): string {
  return name.length > 64 ? `${name.slice(0, 61)}...` : name;
}

function describe(e: ErrorObject): { pointer: string; message: string } {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return { pointer: `${e.instancePath}/${escapeToken(String(p.missingProperty))}`, message: 'is required' };
    case 'additionalProperties':
      return { pointer: `${e.instancePath}/${escapeToken(clip(String(p.additionalProperty)))}`, message: 'is not allowed (additionalProperties is false)' };
    case 'unevaluatedProperties':
      return { pointer: `${e.instancePath}/${escapeToken(clip(String(p.unevaluatedProperty)))}`, message: 'is not allowed (unevaluatedProperties is false)' };
    case 'enum': {
      const allowed = (p.allowedValues as unknown[]).slice(0, 20).map((v) => JSON.stringify(v)).join(', ');
      return { pointer: e.instancePath, message: `must be one of ${allowed}${(p.allowedValues as unknown[]).length > 20 ? ', …' : ''}` };
    }
    default:
      return { pointer: e.instancePath, message: e.message ?? 'is invalid' };
  }
}

/** Ajv errors as violations of one location (and name). */
export function fromAjv(errors: readonly ErrorObject[] | null | undefined, location: ViolationLocation, name?: string): Violation[] {
  if (!errors) return [];
  const out: Violation[] = [];
  const seen = new Set<string>();
  // A text-form error says the same as a type error at the same place ("abc" for an integer): keep one.
  const typed = new Set(errors.filter((e) => e.keyword === 'type').map((e) => e.instancePath));
  for (const e of errors) {
    if (e.keyword === TEXT_FORM && typed.has(e.instancePath)) continue;
    const d = describe(e);
    const key = `${d.pointer}\0${d.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(name === undefined ? { in: location, ...d } : { in: location, name, ...d });
  }
  return out;
}

/** One line per violation ("query limit: must be <= 100"; "body /items/0/id: is required"). */
export function summary(violations: readonly Violation[]): string {
  return violations
    .map((v) => {
      const where = [v.in, v.name, v.pointer || undefined].filter((x) => x !== undefined).join(' ');
      return `${where}: ${v.message}`;
    })
    .join('; ');
}

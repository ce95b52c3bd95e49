/**
 * Names and paths for generated config: OpenAPI path templates as Kong regex
 * route paths with named captures, entity names sanitised and made unique.
 */

const REGEX_SPECIAL = /[.*+?^${}()|[\]\\]/g;

/** A capture-group name JavaScript accepts: letters, digits, _ (not first a digit). */
function captureName(param: string, taken: Set<string>): string {
  let name = param.replace(/[^A-Za-z0-9_]/g, '_');
  if (name === '' || /^[0-9]/.test(name)) name = `_${name}`;
  let unique = name;
  for (let i = 2; taken.has(unique); i++) unique = `${name}_${i}`;
  taken.add(unique);
  return unique;
}

export interface RoutePath {
  /** `~/pets/(?<petId>[^/]+)$`: anchored at both ends (the router anchors the start); a parameter name that is not a valid group name is made one (`pet-id` → `pet_id`). */
  path: string;
  /** Segments without a parameter: more of them = more specific (used as regex_priority). */
  literalSegments: number;
}

/** `/pets/{petId}` → `~/pets/(?<petId>[^/]+)$`; literal parts regex-escaped. */
export function templateToRegex(template: string): RoutePath {
  const taken = new Set<string>();
  let out = '';
  let last = 0;
  for (const m of template.matchAll(/\{([^{}]+)\}/g)) {
    out += template.slice(last, m.index).replace(REGEX_SPECIAL, '\\$&');
    out += `(?<${captureName(m[1]!, taken)}>[^/]+)`;
    last = m.index + m[0].length;
  }
  out += template.slice(last).replace(REGEX_SPECIAL, '\\$&');
  const literalSegments = template.split('/').filter((s) => s !== '' && !s.includes('{')).length;
  return { path: `~${out}$`, literalSegments };
}

/** A name made of letters, digits and . _ ~ - (Kong's entity name characters). */
export function sanitizeName(raw: string): string {
  return raw
    .replace(/[^A-Za-z0-9._~-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^-+|-+$/g, '');
}

/** A lower-case slug: "Pet Store API" → "pet-store-api". */
export function slug(raw: string): string {
  return sanitizeName(raw.toLowerCase().replace(/[._~]+/g, '-'));
}

/** Hands out unique names: the second "x" is "x-2". */
export class NameSet {
  readonly #taken = new Set<string>();

  take(wanted: string): string {
    let name = wanted;
    for (let i = 2; this.#taken.has(name); i++) name = `${wanted}-${i}`;
    this.#taken.add(name);
    return name;
  }
}

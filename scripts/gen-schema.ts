/**
 * Writes docs/palisade.schema.json: the JSON Schema of the whole config file,
 * with each plugin's config schema attached to its name, so editors can
 * validate and autocomplete palisade.yaml. `npm run schema` regenerates it; a
 * conformance test fails when it is stale.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigSchema } from '../src/config/schema.ts';
import { allPlugins } from '../src/plugins/registry.ts';

export function configJsonSchema(): Record<string, unknown> {
  const plugins = allPlugins().map((p) => ({
    if: { properties: { name: { const: p.name } }, required: ['name'] },
    then: { properties: { config: p.schema } },
  }));
  const schema = JSON.parse(JSON.stringify(ConfigSchema));
  schema.$schema = 'http://json-schema.org/draft-07/schema#';
  schema.title = 'Palisade declarative configuration';
  schema.definitions = { plugin: { allOf: plugins, properties: { name: { enum: allPlugins().map((p) => p.name) } } } };
  // Every plugin list points at the shared definition.
  const walk = (node: unknown): void => {
    if (node === null || typeof node !== 'object') return;
    const obj = node as Record<string, unknown>;
    const props = obj.properties as Record<string, Record<string, unknown>> | undefined;
    if (props?.plugins?.type === 'array') props.plugins.items = { allOf: [props.plugins.items, { $ref: '#/definitions/plugin' }] };
    for (const v of Object.values(obj)) walk(v);
  };
  walk(schema.properties);
  return schema;
}

type Node = Record<string, unknown>;

function typeOf(s: Node): string {
  if (Array.isArray(s.enum)) return (s.enum as unknown[]).map((v) => JSON.stringify(v)).join(' \\| ');
  if (s.type === 'array') return `array of ${typeOf((s.items as Node) ?? {})}`;
  if (s.anyOf) return (s.anyOf as Node[]).map(typeOf).join(' or ');
  if (s.type === 'object' && !s.properties) return 'map';
  return String(s.type ?? 'any');
}

/** Markdown tables of every field: the reference in docs/configuration.md. */
function fieldsTable(title: string, schema: Node, out: string[], level = 3, recurse = true): void {
  const props = (schema.properties ?? {}) as Record<string, Node>;
  const required = new Set((schema.required as string[]) ?? []);
  out.push(`${'#'.repeat(level)} ${title}`, '', String(schema.description ?? ''), '', '| field | type | default | description |', '| --- | --- | --- | --- |');
  const nested: [string, Node][] = [];
  for (const [k, v] of Object.entries(props)) {
    const def = v.default === undefined ? (required.has(k) ? 'required' : '') : `\`${JSON.stringify(v.default)}\``;
    out.push(`| \`${k}\` | ${typeOf(v)} | ${def} | ${String(v.description ?? '').replace(/\|/g, '\\|')} |`);
    if (v.type === 'object' && v.properties) nested.push([`${title}.${k}`, v]);
    const items = v.items as Node | undefined;
    if (items?.type === 'object' && items.properties && !['plugins', 'routes'].includes(k)) nested.push([`${title}.${k}[]`, items]);
  }
  out.push('');
  if (recurse) for (const [t, s] of nested) fieldsTable(t, s, out, level);
}

export function configurationDoc(): string {
  const root = ConfigSchema as unknown as Node;
  const props = root.properties as Record<string, Node>;
  const out = [
    '# Configuration reference',
    '',
    'Generated from the schema by `npm run schema` — do not edit by hand. The file format is Kong decK 3.0 plus the fields marked "Palisade:".',
    '',
  ];
  fieldsTable('Top level', root, out, 2, false);
  for (const name of ['server', 'admin']) fieldsTable(name, props[name]!, out);
  for (const name of ['services', 'routes', 'upstreams', 'consumers', 'plugins', 'certificates']) fieldsTable(`${name}[]`, props[name]!.items as Node, out);
  out.push('## Plugins', '');
  for (const p of [...allPlugins()].sort((a, b) => a.name.localeCompare(b.name))) {
    fieldsTable(`${p.name} (priority ${p.priority})`, { ...(p.schema as unknown as Node), description: p.description }, out);
  }
  return out.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = fileURLToPath(new URL('../docs/palisade.schema.json', import.meta.url));
  writeFileSync(out, JSON.stringify(configJsonSchema(), null, 2) + '\n');
  const doc = fileURLToPath(new URL('../docs/configuration.md', import.meta.url));
  writeFileSync(doc, configurationDoc());
  console.log(`wrote ${out} and ${doc}`);
}

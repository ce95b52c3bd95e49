/**
 * Rules every plugin keeps (ARCHITECTURE.md): one folder per plugin with its
 * schema, definition and tests; every config field documented; unique
 * priorities inside the documented bands; plugins import only the PDK.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigSchema } from '../../src/config/schema.ts';
import { allPlugins } from '../../src/plugins/registry.ts';
import { configJsonSchema, configurationDoc } from '../../scripts/gen-schema.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const pluginsDir = join(root, 'src/plugins');

/** Paths of schema properties without a description. */
function undocumented(schema: unknown, at = ''): string[] {
  if (schema === null || typeof schema !== 'object') return [];
  const s = schema as Record<string, unknown>;
  const out: string[] = [];
  for (const [k, v] of Object.entries((s.properties as Record<string, Record<string, unknown>>) ?? {})) {
    if (typeof v.description !== 'string' || v.description.length < 3) out.push(`${at}/${k}`);
    out.push(...undocumented(v, `${at}/${k}`));
  }
  for (const key of ['items', 'additionalProperties'] as const) if (typeof s[key] === 'object') out.push(...undocumented(s[key], `${at}/${key}`));
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) for (const sub of (s[key] as unknown[]) ?? []) out.push(...undocumented(sub, at));
  return out;
}

test('every plugin folder is registered, and every registered plugin has schema, index and tests', () => {
  const folders = readdirSync(pluginsDir).filter((f) => statSync(join(pluginsDir, f)).isDirectory());
  const names = allPlugins().map((p) => p.name);
  assert.deepEqual([...folders].sort(), [...names].sort());
  for (const name of names) {
    assert.match(name, /^[a-z][a-z0-9-]*$/, `${name} is kebab-case`);
    for (const f of ['schema.ts', 'index.ts', `${name}.test.ts`]) assert.ok(existsSync(join(pluginsDir, name, f)), `src/plugins/${name}/${f} exists`);
  }
});

test('every config field of the file and of every plugin has a description', () => {
  assert.deepEqual(undocumented(ConfigSchema), []);
  for (const p of allPlugins()) assert.deepEqual(undocumented(p.schema), [], `plugin ${p.name}`);
});

test('plugin priorities are unique and plugins declare at least one phase', () => {
  const seen = new Map<number, string>();
  for (const p of allPlugins()) {
    assert.ok(!seen.has(p.priority), `${p.name} and ${seen.get(p.priority)} share priority ${p.priority}`);
    seen.set(p.priority, p.name);
    assert.ok(p.description.length > 10, `${p.name} has a description`);
  }
});

test('plugins import only the PDK, their own folder, node: builtins and npm packages', () => {
  const bad: string[] = [];
  for (const name of readdirSync(pluginsDir)) {
    const dir = join(pluginsDir, name);
    if (!statSync(dir).isDirectory()) continue;
    for (const file of readdirSync(dir, { recursive: true }) as string[]) {
      if (!file.endsWith('.ts') || file.endsWith('.test.ts')) continue;
      const src = readFileSync(join(dir, file), 'utf8');
      for (const m of src.matchAll(/(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
        const spec = m[1] ?? m[2]!;
        const ok = spec.startsWith('node:') || !spec.startsWith('.') || /^\.\.\/\.\.\/pdk\/[a-z-]+\.ts$/.test(spec) || (spec.startsWith('./') && !spec.includes('..'));
        if (!ok) bad.push(`src/plugins/${name}/${file}: ${spec}`);
      }
    }
  }
  assert.deepEqual(bad, [], 'plugins must not import the core');
});

test('docs/palisade.schema.json and docs/configuration.md are up to date (npm run schema)', () => {
  const published = JSON.parse(readFileSync(join(root, 'docs/palisade.schema.json'), 'utf8'));
  assert.deepEqual(published, JSON.parse(JSON.stringify(configJsonSchema())));
  assert.equal(readFileSync(join(root, 'docs/configuration.md'), 'utf8'), configurationDoc());
});

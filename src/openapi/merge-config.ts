/**
 * `openapi2config --merge BASE`: the generated services added to a hand-written
 * Palisade config (listeners, consumers and their credentials, global plugins,
 * certificates …). A service of the base with the name of a generated one is
 * replaced; consumers are kept (the generated `anonymous` is added only when
 * the base has none); top-level plugins of both are kept.
 */
type Obj = Record<string, unknown>;

const list = (v: unknown): Obj[] => (Array.isArray(v) ? (v as Obj[]) : []);

export function mergeConfig(base: Obj, generated: Obj): Obj {
  const out: Obj = { _format_version: generated._format_version };
  for (const [k, v] of Object.entries(base)) if (!['_format_version', 'services', 'consumers', 'plugins'].includes(k)) out[k] = v;
  const names = new Set(list(generated.services).map((s) => s.name));
  out.services = [...list(base.services).filter((s) => !names.has(s.name)), ...list(generated.services)];
  const users = new Set(list(base.consumers).map((c) => c.username));
  const consumers = [...list(base.consumers), ...list(generated.consumers).filter((c) => !users.has(c.username))];
  if (consumers.length) out.consumers = consumers;
  const plugins = [...list(base.plugins), ...list(generated.plugins)];
  if (plugins.length) out.plugins = plugins;
  return out;
}

/**
 * Span names made once, not per span: by method and route for the request's
 * span, by phase and plugin for the plugin spans (Kong's names). Bounded:
 * routes and plugins come from the config, methods are few.
 */
const PHASE_NAME = { rewrite: 'rewrite', access: 'access', response: 'header_filter', body: 'body_filter' } as const;
type Phase = keyof typeof PHASE_NAME;

const MAX_NAMES = 4096;
const roots = new Map<string, Map<string, string>>();
const phases = new Map<string, Record<Phase, string>>();

export const spanNames = {
  /** `<METHOD> <route>`. */
  root(method: string, route: string): string {
    let byMethod = roots.get(route);
    if (byMethod === undefined && roots.size < MAX_NAMES) roots.set(route, (byMethod = new Map()));
    let name = byMethod?.get(method);
    if (name === undefined) {
      name = `${method} ${route}`;
      if (byMethod !== undefined && byMethod.size < 64) byMethod.set(method, name);
    }
    return name;
  },
  /** `kong.<phase>.plugin.<name>` (Kong's phase names: header_filter, body_filter). */
  phase(phase: Phase, plugin: string): string {
    let byPhase = phases.get(plugin);
    if (byPhase === undefined) {
      byPhase = { rewrite: '', access: '', response: '', body: '' };
      for (const p of Object.keys(PHASE_NAME) as Phase[]) byPhase[p] = `kong.${PHASE_NAME[p]}.plugin.${plugin}`;
      if (phases.size < MAX_NAMES) phases.set(plugin, byPhase);
    }
    return byPhase[phase];
  },
};

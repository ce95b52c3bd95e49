/**
 * OpenAPI security → Palisade authentication plugins.
 *
 *   apiKey in header/query   → key-auth (key_names; only the declared place)
 *   http basic               → basic-auth
 *   http bearer              → jwt (Authorization: Bearer)
 *   oauth2, openIdConnect,   → nothing generated: a warning (no OIDC/OAuth
 *   mutualTLS, apiKey in       plugin yet; mtls-auth needs CA certificates;
 *   cookie, other http         key-auth reads no cookies)
 *
 * A requirement list is OR, each requirement object AND. One requirement:
 * every plugin must pass. Several one-scheme requirements: Kong's "any of
 * them" pattern — each plugin falls back to the `anonymous` consumer, and a
 * request-termination scoped to that consumer answers 401 (unless `{}` makes
 * authentication optional).
 */
import type { SecurityRequirement, SecuritySchemeObject } from './document.ts';

export const ANONYMOUS = 'anonymous';

export interface PluginEntry {
  name: string;
  config: Record<string, unknown>;
  /** Set on a plugin scoped to a consumer (the anonymous 401). */
  consumer?: string;
}

export interface SecurityPlan {
  plugins: PluginEntry[];
  /** True when the plan needs the `anonymous` consumer. */
  anonymous: boolean;
  warnings: string[];
}

/** The plugin one scheme maps to, or a warning. */
function pluginFor(name: string, scheme: SecuritySchemeObject | undefined): PluginEntry | string {
  if (!scheme) return `security scheme '${name}' is not defined in components.securitySchemes`;
  const type = String(scheme.type);
  if (type === 'apiKey') {
    const where = scheme.in;
    if (where !== 'header' && where !== 'query') return `security scheme '${name}': an API key in a ${String(where)} is not supported by key-auth (header or query only); add an authentication plugin by hand`;
    if (typeof scheme.name !== 'string' || !/^[A-Za-z0-9_-]+$/.test(scheme.name)) return `security scheme '${name}': key-auth accepts key names of [A-Za-z0-9_-] only, not '${String(scheme.name)}'`;
    return { name: 'key-auth', config: { key_names: [scheme.name], key_in_header: where === 'header', key_in_query: where === 'query', hide_credentials: true } };
  }
  if (type === 'http') {
    const s = String(scheme.scheme).toLowerCase();
    if (s === 'basic') return { name: 'basic-auth', config: { hide_credentials: true } };
    if (s === 'bearer') {
      // Kong's jwt plugin: the token in Authorization: Bearer; no query or cookie fallbacks the document does not declare.
      return { name: 'jwt', config: { header_names: ['authorization'], uri_param_names: [], cookie_names: [] } };
    }
    return `security scheme '${name}': http '${s}' authentication has no Palisade plugin (basic and bearer do)`;
  }
  if (type === 'oauth2' || type === 'openIdConnect') {
    return `security scheme '${name}' (${type}): no OpenID Connect / OAuth 2.0 plugin exists yet, so nothing enforces it; protect these routes by hand (e.g. jwt with the provider's JWKS in jwt_secrets[].jwks_url)`;
  }
  if (type === 'mutualTLS') return `security scheme '${name}' (mutualTLS): add mtls-auth with the CA certificates clients must chain to`;
  return `security scheme '${name}': unknown type '${type}'`;
}

/** Two schemes of the same plugin (an API key in a header OR in the query) become one instance. */
function mergeInto(list: PluginEntry[], p: PluginEntry): void {
  const same = list.find((x) => x.name === p.name && x.consumer === undefined);
  if (!same) return void list.push({ ...p, config: { ...p.config } });
  if (p.name === 'key-auth') {
    const c = same.config;
    c.key_names = [...new Set([...(c.key_names as string[]), ...(p.config.key_names as string[])])];
    c.key_in_header = Boolean(c.key_in_header) || Boolean(p.config.key_in_header);
    c.key_in_query = Boolean(c.key_in_query) || Boolean(p.config.key_in_query);
  }
}

/** The plugins enforcing `requirements` (an operation's effective `security`), given the document's schemes. */
export function planSecurity(schemes: Readonly<Record<string, SecuritySchemeObject>>, requirements: readonly SecurityRequirement[]): SecurityPlan {
  const plan: SecurityPlan = { plugins: [], anonymous: false, warnings: [] };
  if (requirements.length === 0) return plan;
  const alternatives = requirements.map((r) => Object.keys(r));
  const optional = alternatives.some((a) => a.length === 0);
  let chosen = alternatives.filter((a) => a.length > 0);
  if (chosen.length === 0) return plan; // security: [{}] — explicitly anonymous
  if (chosen.length > 1 && chosen.some((a) => a.length > 1)) {
    plan.warnings.push(`security alternatives that combine several schemes (${JSON.stringify(requirements)}) cannot be expressed; only the first requirement is enforced`);
    chosen = chosen.slice(0, 1);
  }
  const anyOf = chosen.length > 1 || optional;
  for (const name of chosen.flat()) {
    const p = pluginFor(name, schemes[name]);
    if (typeof p === 'string') {
      plan.warnings.push(p);
      continue;
    }
    if (!anyOf && plan.plugins.some((x) => x.name === p.name)) {
      plan.warnings.push(`schemes required together map to the same plugin (${p.name}); they are merged, so either one is enough`);
    }
    mergeInto(plan.plugins, anyOf ? { ...p, config: { ...p.config, anonymous: ANONYMOUS } } : p);
  }
  if (anyOf && plan.plugins.length > 0) {
    plan.anonymous = true;
    if (!optional) {
      const names = plan.plugins.map((p) => p.name).join(', ');
      plan.plugins.push({
        name: 'request-termination',
        consumer: ANONYMOUS,
        config: { status_code: 401, message: `Unauthorized: valid credentials required (${names})` },
      });
    }
  }
  if (plan.plugins.length === 0 && !optional && plan.warnings.length > 0) {
    plan.warnings.push('no plugin enforces this security requirement: requests pass unauthenticated');
  }
  return plan;
}

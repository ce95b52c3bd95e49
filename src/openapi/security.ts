/**
 * OpenAPI security → Palisade authentication plugins.
 *
 *   apiKey in header/query   → key-auth (key_names; only the declared place)
 *   http basic               → basic-auth
 *   http bearer              → jwt (Authorization: Bearer)
 *   oauth2, openIdConnect,   → nothing Palisade can enforce yet (no OIDC/OAuth
 *   mutualTLS, apiKey in       plugin; mtls-auth needs CA certificates;
 *   cookie, other http         key-auth reads no cookies)
 *
 * A requirement list is OR, each requirement object AND. One requirement:
 * every plugin must pass. Several one-scheme requirements: Kong's "any of
 * them" pattern — each plugin falls back to the `anonymous` consumer, and a
 * request-termination scoped to that consumer answers 401 (unless `{}` makes
 * authentication optional).
 *
 * Authentication fails closed: when the generated plugins cannot enforce a
 * requirement (a scheme of it has no plugin, and no other alternative does),
 * the plan says so (`unenforced`) and the route gets a request-termination
 * answering 401 — unless the caller allows unenforced security (then the
 * requests pass unauthenticated, with loud warnings).
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
  /**
   * The requirement is not enforced by the plugins: the request-termination
   * (401) the route gets, naming the schemes Palisade cannot enforce — or
   * null (enforced, optional, or unenforced security allowed).
   */
  terminate: PluginEntry | null;
}

/** A scheme no generated plugin enforces: why, and how the 401 names it. */
interface Unsupported {
  reason: string;
  label: string;
}

/** The plugin one scheme maps to, or why there is none. */
function pluginFor(name: string, scheme: SecuritySchemeObject | undefined): PluginEntry | Unsupported {
  if (!scheme) return { reason: `security scheme '${name}' is not defined in components.securitySchemes`, label: `'${name}'` };
  const type = String(scheme.type);
  if (type === 'apiKey') {
    const where = scheme.in;
    if (where !== 'header' && where !== 'query') return { reason: `security scheme '${name}': an API key in a ${String(where)} is not supported by key-auth (header or query only)`, label: `'${name}' (API key in a ${String(where)})` };
    if (typeof scheme.name !== 'string' || !/^[A-Za-z0-9_-]+$/.test(scheme.name)) return { reason: `security scheme '${name}': key-auth accepts key names of [A-Za-z0-9_-] only, not '${String(scheme.name)}'`, label: `'${name}' (apiKey)` };
    return { name: 'key-auth', config: { key_names: [scheme.name], key_in_header: where === 'header', key_in_query: where === 'query', hide_credentials: true } };
  }
  if (type === 'http') {
    const s = String(scheme.scheme).toLowerCase();
    if (s === 'basic') return { name: 'basic-auth', config: { hide_credentials: true } };
    if (s === 'bearer') {
      // Kong's jwt plugin: the token in Authorization: Bearer; no query or cookie fallbacks the document does not declare.
      return { name: 'jwt', config: { header_names: ['authorization'], uri_param_names: [], cookie_names: [] } };
    }
    return { reason: `security scheme '${name}': http '${s}' authentication has no Palisade plugin (basic and bearer do)`, label: `'${name}' (http ${s})` };
  }
  if (type === 'oauth2' || type === 'openIdConnect') {
    return { reason: `security scheme '${name}' (${type}): no OpenID Connect / OAuth 2.0 plugin exists yet (a jwt plugin with the provider's JWKS in jwt_secrets[].jwks_url can stand in)`, label: `'${name}' (${type})` };
  }
  if (type === 'mutualTLS') return { reason: `security scheme '${name}' (mutualTLS): mtls-auth needs the CA certificates clients must chain to`, label: `'${name}' (mutualTLS)` };
  return { reason: `security scheme '${name}': unknown type '${type}'`, label: `'${name}' (${type})` };
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
export function planSecurity(schemes: Readonly<Record<string, SecuritySchemeObject>>, requirements: readonly SecurityRequirement[], allowUnenforced = false): SecurityPlan {
  const plan: SecurityPlan = { plugins: [], anonymous: false, warnings: [], terminate: null };
  if (requirements.length === 0) return plan;
  const alternatives = requirements.map((r) => Object.keys(r));
  const optional = alternatives.some((a) => a.length === 0);
  let chosen = alternatives.filter((a) => a.length > 0);
  if (chosen.length === 0) return plan; // security: [{}] — explicitly anonymous
  if (chosen.length > 1 && chosen.some((a) => a.length > 1)) {
    plan.warnings.push(`security alternatives that combine several schemes (${JSON.stringify(requirements)}) cannot be expressed; only the first requirement is enforced (clients using the others are refused)`);
    chosen = chosen.slice(0, 1);
  }
  const anyOf = chosen.length > 1 || optional;
  const unsupported: Unsupported[] = [];
  for (const name of chosen.flat()) {
    const p = pluginFor(name, schemes[name]);
    if ('reason' in p) {
      unsupported.push(p);
      plan.warnings.push(p.reason);
      continue;
    }
    if (!anyOf && plan.plugins.some((x) => x.name === p.name)) {
      // Kong runs one instance of a plugin per route: two API keys required together become one key-auth that accepts either.
      unsupported.push({ reason: '', label: `'${name}' together with another ${p.name} scheme` });
      plan.warnings.push(`schemes required together map to the same plugin (${p.name}), which would accept either one alone`);
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
  // Enforced when authentication is optional, when every scheme of the one requirement has its plugin,
  // or when one of the alternatives has (the others are then refused: the anonymous 401).
  const enforced = optional || (anyOf ? plan.plugins.length > 0 : unsupported.length === 0);
  if (enforced) {
    if (anyOf && !optional && unsupported.length) plan.warnings.push(`clients presenting only ${unsupported.map((u) => u.label).join(', ')} are refused (401)`);
    return plan;
  }
  if (allowUnenforced) {
    plan.warnings.push('UNENFORCED: no plugin enforces this security requirement, requests pass UNAUTHENTICATED (--allow-unenforced-security)');
    return plan;
  }
  const labels = unsupported.map((u) => u.label).join(', ');
  plan.terminate = { name: 'request-termination', config: { status_code: 401, message: `Unauthorized: this operation requires authentication Palisade cannot enforce yet: ${labels}` } };
  plan.warnings.push('nothing enforces this security requirement, so the route answers 401 (request-termination): protect it by hand and remove that plugin, or generate with --allow-unenforced-security');
  return plan;
}

/**
 * `palisade openapi2config`: an OpenAPI document → Palisade declarative config
 * (decK format 3.0). A service per server URL, a route per path and method
 * (regex path with named captures, strip_path false), the oas-validation
 * plugin on every service, security schemes as authentication plugins
 * (security.ts), and the `x-palisade-*` extensions merged in. The mapping is
 * documented in docs/openapi.md.
 */
import type { OpenApiDocument, ServerObject } from './document.ts';
import { isObject, toPointer } from './pointer.ts';
import { NameSet, sanitizeName, slug, templateToRegex } from './names.ts';
import { ANONYMOUS, planSecurity, type PluginEntry } from './security.ts';

type Obj = Record<string, unknown>;

export interface ToConfigOptions {
  /** How the generated oas-validation plugin names the document: a URL, or a path (relative to the working directory of `palisade start`). */
  specRef: string;
  /** Replaces every server URL of the document (e.g. the mock's address), or picks `servers[N]` when a number. */
  server?: string;
  /** Leave out the oas-validation plugin. */
  validation?: boolean;
  /**
   * Let routes whose security requirement no generated plugin enforces pass
   * unauthenticated (with warnings). Default false: such a route gets a
   * request-termination answering 401 (authentication fails closed).
   */
  allowUnenforcedSecurity?: boolean;
}

export interface Warning {
  /** JSON pointer of what the warning is about in the OpenAPI document. */
  pointer: string;
  message: string;
  /** Where it applies in the generated config (a YAML path), for a comment there. */
  at?: (string | number)[];
}

export interface ToConfigResult {
  config: Obj;
  warnings: Warning[];
}

export class ConversionError extends Error {
  override name = 'ConversionError';
}

/** `https://{region}.example.com/v1` with the variables' defaults (or `--server`), as a URL. */
function serverUrl(servers: readonly ServerObject[], override: string | undefined, where: string): URL {
  let chosen: ServerObject | undefined;
  if (override !== undefined && !/^\d+$/.test(override)) chosen = { url: override };
  else {
    const index = override === undefined ? 0 : Number(override);
    chosen = servers[index];
    if (!chosen) throw new ConversionError(`--server ${override}: ${where} has ${servers.length} server${servers.length === 1 ? '' : 's'} (0–${servers.length - 1})`);
  }
  const vars = chosen.variables ?? {};
  const text = chosen.url.replace(/\{([^{}]+)\}/g, (_, name: string) => {
    const v = vars[name];
    if (v?.default === undefined) throw new ConversionError(`${where}: server variable '${name}' of ${chosen.url} has no default`);
    return String(v.default);
  });
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConversionError(`${where}: server URL '${text}' is not absolute (or the document has no servers); pass --server URL, the upstream to proxy to`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConversionError(`${where}: server URL '${text}' is not http(s)`);
  return url;
}

/** Plugins of an `x-palisade-plugins` extension: a list of { name, config, … }. */
function extensionPlugins(node: Obj, pointer: string, warnings: Warning[]): Obj[] {
  const list = node['x-palisade-plugins'];
  if (list === undefined) return [];
  if (!Array.isArray(list) || !list.every((p) => isObject(p) && typeof p.name === 'string')) {
    throw new ConversionError(`${pointer}/x-palisade-plugins: expected a list of { name, config } objects`);
  }
  if (list.some((p) => (p as Obj).consumer !== undefined || (p as Obj).route !== undefined || (p as Obj).service !== undefined)) {
    warnings.push({ pointer: `${pointer}/x-palisade-plugins`, message: 'service/route/consumer references are kept as written; the scope is already given by where the extension sits' });
  }
  return list.map((p) => structuredClone(p as Obj));
}

/** Add `p` to a plugin list; an entry of the same name (and consumer) is merged, `p`'s config fields winning. */
function mergePlugin(list: Obj[], p: Obj): void {
  const i = list.findIndex((x) => x.name === p.name && x.consumer === p.consumer);
  if (i < 0) return void list.push(p);
  const prev = list[i]!;
  list[i] = { ...prev, ...p, config: { ...(prev.config as Obj | undefined), ...(p.config as Obj | undefined) } };
}

function fields(node: Obj, key: string, pointer: string): Obj {
  const v = node[key];
  if (v === undefined) return {};
  if (!isObject(v)) throw new ConversionError(`${pointer}/${key}: expected an object of ${key === 'x-palisade-route' ? 'route' : 'service'} fields`);
  return structuredClone(v);
}

interface Service {
  entity: Obj;
  routes: Obj[];
  /** Each route's security plugins (JSON), to hoist them to the service when all routes agree; its fail-closed 401, always on the route. */
  security: { route: Obj; plugins: PluginEntry[]; terminate: PluginEntry | null }[];
}

export function openapiToConfig(doc: OpenApiDocument, opts: ToConfigOptions): ToConfigResult {
  const raw = doc.raw as Obj;
  const warnings: Warning[] = doc.warnings.map((message) => ({ pointer: '', message }));
  const info = isObject(raw.info) ? raw.info : {};
  const base = slug(String(info.title ?? 'api')) || 'api';
  const serviceNames = new NameSet();
  const routeNames = new NameSet();
  const services = new Map<string, Service>();
  const docPlugins = extensionPlugins(raw, '', warnings);
  const serviceFields = fields(raw, 'x-palisade-service', '');
  const docRoute = fields(raw, 'x-palisade-route', '');
  let anonymous = false;

  const serviceFor = (servers: readonly ServerObject[], where: string): Service => {
    // --server N picks among the document's servers; path- and operation-level servers use their first.
    const own = servers !== raw.servers && opts.server !== undefined && /^\d+$/.test(opts.server);
    const url = serverUrl(servers, own ? '0' : opts.server, where);
    const path = url.pathname.replace(/\/+$/, '');
    const key = `${url.protocol}//${url.host}${path}`;
    let svc = services.get(key);
    if (!svc) {
      const first = services.size === 0;
      const name = first && typeof serviceFields.name === 'string' ? serviceNames.take(serviceFields.name) : serviceNames.take(first ? base : `${base}-${slug(url.host + path)}`);
      const plugins: Obj[] = [];
      if (opts.validation !== false) plugins.push({ name: 'oas-validation', config: validationConfig(opts.specRef) });
      for (const p of docPlugins) mergePlugin(plugins, structuredClone(p));
      svc = { entity: { ...structuredClone(serviceFields), name, url: key, routes: [], plugins }, routes: [], security: [] };
      services.set(key, svc);
    }
    return svc;
  };

  for (const op of doc.operations) {
    const itemPtr = toPointer(['paths', op.path]);
    const item = doc.resolve<Obj>((raw.paths as Obj)[op.path], itemPtr).value;
    const opNode = doc.get(op.pointer) as Obj;
    if (item['x-palisade-ignore'] === true || op.extensions['x-palisade-ignore'] === true) continue;
    const svc = serviceFor(op.servers, op.pointer);
    const regex = templateToRegex(op.path);
    const fromPath = sanitizeName(`${op.method}${op.path.replace(/[{}]/g, '')}`.replace(/\//g, '-'));
    const route: Obj = {
      name: routeNames.take((op.operationId !== undefined && sanitizeName(op.operationId)) || fromPath || op.method),
      methods: [op.method.toUpperCase()],
      paths: [regex.path],
      strip_path: false,
      regex_priority: regex.literalSegments,
      ...(op.tags.length ? { tags: op.tags.map(String) } : {}),
      ...structuredClone(docRoute),
      ...fields(item, 'x-palisade-route', itemPtr),
      ...fields(opNode, 'x-palisade-route', op.pointer),
      plugins: [] as Obj[],
    };
    const sec = planSecurity(doc.securitySchemes, op.security, opts.allowUnenforcedSecurity === true);
    const secPtr = opNode.security !== undefined ? `${op.pointer}/security` : '/security';
    for (const message of sec.warnings) warnings.push({ pointer: secPtr, message: `${String(route.name)}: ${message}` });
    anonymous ||= sec.anonymous;
    for (const p of [...extensionPlugins(item, itemPtr, warnings), ...extensionPlugins(opNode, op.pointer, warnings)]) mergePlugin(route.plugins as Obj[], p);
    svc.routes.push(route);
    svc.security.push({ route, plugins: sec.plugins, terminate: sec.terminate });
  }
  if (services.size === 0) {
    const servers = Array.isArray(raw.servers) && raw.servers.length ? (raw.servers as ServerObject[]) : [{ url: '/' }];
    serviceFor(servers, 'the document'); // a document without operations still names its upstream
  }

  const out: Obj[] = [];
  const scoped: Obj[] = [];
  for (const svc of services.values()) {
    placeSecurity(svc, scoped);
    for (const r of svc.routes) if ((r.plugins as Obj[]).length === 0) delete r.plugins;
    (svc.entity.routes as Obj[]).push(...svc.routes);
    out.push(svc.entity);
  }
  const config: Obj = { _format_version: '3.0', services: out };
  if (anonymous) config.consumers = [{ username: ANONYMOUS }];
  if (scoped.length) config.plugins = scoped;
  locateWarnings(warnings, out);
  return { config, warnings };
}

/**
 * Security plugins go on the service when every route of it has the same; else on each route. Extension plugins win.
 * A consumer-scoped one (the anonymous 401) goes to the top-level `plugins` with service/route and consumer
 * references: that is how decK writes a plugin scoped to two entities.
 */
function placeSecurity(svc: Service, scoped: Obj[]): void {
  const place = (list: Obj[], p: PluginEntry, scope: Obj) => {
    if (p.consumer === undefined) list.push({ name: p.name, config: structuredClone(p.config) });
    else scoped.push({ name: p.name, ...scope, consumer: p.consumer, config: structuredClone(p.config) });
  };
  const same = svc.security.every((s) => JSON.stringify(s.plugins) === JSON.stringify(svc.security[0]?.plugins));
  if (same && svc.security.length > 0) {
    const plugins = svc.entity.plugins as Obj[];
    const own = plugins.splice(0); // extension plugins of the document are merged over the generated ones
    for (const p of svc.security[0]!.plugins) place(plugins, p, { service: svc.entity.name });
    for (const p of own) mergePlugin(plugins, p);
  }
  for (const { route, plugins, terminate } of svc.security) {
    const own = (route.plugins as Obj[]).splice(0);
    if (!same) for (const p of plugins) place(route.plugins as Obj[], p, { route: route.name });
    // The fail-closed 401 stays on its route (a service-wide one would outlive a route added by hand).
    if (terminate) place(route.plugins as Obj[], terminate, { route: route.name });
    for (const p of own) mergePlugin(route.plugins as Obj[], p);
  }
}

/** Warnings about a route carry the route's place in the generated config (for a YAML comment there). */
function locateWarnings(warnings: Warning[], services: Obj[]): void {
  for (const w of warnings) {
    const routeName = /^([^:]+): /.exec(w.message)?.[1];
    services.forEach((s, i) =>
      (s.routes as Obj[]).forEach((r, j) => {
        if (r.name === routeName) w.at = ['services', i, 'routes', j];
      }),
    );
  }
}

/**
 * The oas-validation plugin's config naming the document: api_spec_url for a
 * URL, else api_spec_file (resolved by the plugin against the working
 * directory of `palisade start`). Credential presence is not checked there:
 * the generated authentication plugins verify credentials (and, with
 * hide_credentials, remove them before oas-validation runs).
 */
export function validationConfig(specRef: string): Obj {
  const spec = /^https?:\/\//.test(specRef) ? { api_spec_url: specRef } : { api_spec_file: specRef };
  return { ...spec, validate_request_security: false };
}

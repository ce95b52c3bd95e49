/**
 * The router, compiled once per config version.
 *
 * Every (route, host, path) combination becomes a matcher with a static rank;
 * matchers are sorted once, bucketed by exact host, and a request scans its
 * bucket until the first matcher whose conditions all hold. Precedence (first
 * rule that differs decides; see README.md, "Routing"):
 *   1. host: exact > wildcard > no host condition;
 *   2. more header conditions;
 *   3. more of methods / snis conditions;
 *   4. path: regex (by regex_priority, higher first) > prefix (longer first) > none;
 *   5. the route's `priority` (higher first);
 *   6. definition order in the file.
 */
import type { RouteRuntime } from './runtime.ts';
import { headerOf } from '../pdk/own-header.ts';

export interface RouteRequest {
  method: string;
  /** Normalised path (no query). */
  path: string;
  host: string;
  port: number;
  scheme: 'http' | 'https';
  sni: string | null;
  headers: Record<string, string | string[] | undefined>;
}

export interface RouteMatch {
  route: RouteRuntime;
  /** Length of the path prefix that strip_path removes. */
  matchedLength: number;
  captures: Record<string, string> | null;
  /**
   * The most specific route for this request allows only https and the request
   * came over http: the caller answers 426 or redirects (Kong), it does not
   * fall through to a less specific http route.
   */
  httpsOnly: boolean;
}

interface HeaderCond {
  name: string;
  values: Set<string>;
  regexes: RegExp[];
}

interface Matcher {
  route: RouteRuntime;
  hostKind: 0 | 1 | 2;
  host: string;
  wildcard: 'suffix' | 'prefix' | null;
  hostPort: number;
  methods: Set<string> | null;
  headers: HeaderCond[] | null;
  snis: Set<string> | null;
  http: boolean;
  https: boolean;
  pathKind: 0 | 1 | 2;
  prefix: string;
  regex: RegExp | null;
  regexPriority: number;
  order: number;
}

function compare(a: Matcher, b: Matcher): number {
  return (
    b.hostKind - a.hostKind ||
    (b.headers?.length ?? 0) - (a.headers?.length ?? 0) ||
    (b.methods ? 1 : 0) + (b.snis ? 1 : 0) - (a.methods ? 1 : 0) - (a.snis ? 1 : 0) ||
    b.pathKind - a.pathKind ||
    (a.pathKind === 2 ? b.regexPriority - a.regexPriority : b.prefix.length - a.prefix.length) ||
    b.route.config.priority - a.route.config.priority ||
    a.order - b.order
  );
}

function hostMatches(m: Matcher, host: string, port: number): boolean {
  if (m.hostKind === 0) return true;
  if (m.hostPort !== 0 && m.hostPort !== port) return false;
  if (m.wildcard === null) return m.host === host;
  return m.wildcard === 'suffix' ? host.endsWith(m.host) && host.length > m.host.length : host.startsWith(m.host) && host.length > m.host.length;
}

function valueMatches(h: HeaderCond, v: string): boolean {
  if (h.values.has(v.toLowerCase())) return true;
  for (let i = 0; i < h.regexes.length; i++) if (h.regexes[i]!.test(v)) return true;
  return false;
}

function headerMatches(h: HeaderCond, v: string | string[] | undefined): boolean {
  if (v === undefined) return false;
  if (typeof v === 'string') return valueMatches(h, v);
  for (let i = 0; i < v.length; i++) if (valueMatches(h, v[i]!)) return true;
  return false;
}

/** All conditions but the http scheme (an https-only route over http is reported, not skipped). */
function matches(m: Matcher, req: RouteRequest): RegExpExecArray | true | null {
  if (req.scheme === 'https' && !m.https) return null;
  if (m.methods !== null && !m.methods.has(req.method)) return null;
  if (!hostMatches(m, req.host, req.port)) return null;
  if (m.snis !== null && (req.sni === null || !m.snis.has(req.sni))) return null;
  if (m.headers !== null) {
    for (let i = 0; i < m.headers.length; i++) if (!headerMatches(m.headers[i]!, headerOf(req.headers, m.headers[i]!.name))) return null;
  }
  if (m.pathKind === 1) return req.path.startsWith(m.prefix) ? true : null;
  if (m.pathKind === 2) return m.regex!.exec(req.path);
  return true;
}

export class Router {
  readonly #byHost = new Map<string, Matcher[]>();
  readonly #fallback: Matcher[];

  constructor(routes: readonly RouteRuntime[]) {
    const all: Matcher[] = [];
    let order = 0;
    for (const route of routes) {
      const c = route.config;
      const hosts: (string | null)[] = c.hosts?.length ? c.hosts : [null];
      const paths: (string | null)[] = c.paths?.length ? c.paths : [null];
      const headers = c.headers
        ? Object.entries(c.headers).map(([name, vals]) => ({
            name: name.toLowerCase(),
            values: new Set(vals.filter((v) => !v.startsWith('~*')).map((v) => v.toLowerCase())),
            regexes: vals.filter((v) => v.startsWith('~*')).map((v) => new RegExp(v.slice(2), 'i')),
          }))
        : null;
      for (const h of hosts) {
        for (const p of paths) {
          const m: Matcher = {
            route,
            hostKind: 0,
            host: '',
            wildcard: null,
            hostPort: 0,
            methods: c.methods?.length ? new Set(c.methods) : null,
            headers,
            snis: c.snis?.length ? new Set(c.snis.map((s) => s.toLowerCase())) : null,
            http: c.protocols.includes('http'),
            https: c.protocols.includes('https'),
            pathKind: 0,
            prefix: '',
            regex: null,
            regexPriority: c.regex_priority,
            order: order++,
          };
          if (h !== null) {
            let host = h.toLowerCase();
            const colon = host.lastIndexOf(':');
            if (colon > 0) {
              m.hostPort = Number(host.slice(colon + 1));
              host = host.slice(0, colon);
            }
            if (host.startsWith('*.')) {
              m.hostKind = 1;
              m.wildcard = 'suffix';
              m.host = host.slice(1);
            } else if (host.endsWith('.*')) {
              m.hostKind = 1;
              m.wildcard = 'prefix';
              m.host = host.slice(0, -1);
            } else {
              m.hostKind = 2;
              m.host = host;
            }
          }
          if (p !== null) {
            if (p.startsWith('~')) {
              m.pathKind = 2;
              const src = p.slice(1);
              m.regex = new RegExp(src.startsWith('^') ? src : `^(?:${src})`);
            } else {
              m.pathKind = 1;
              m.prefix = p;
            }
          }
          all.push(m);
        }
      }
    }
    all.sort(compare);
    this.#fallback = all.filter((m) => m.hostKind !== 2);
    for (const m of all) {
      if (m.hostKind !== 2 || this.#byHost.has(m.host)) continue;
      // The bucket of an exact host: its own matchers plus all host-less and wildcard ones, in rank order.
      this.#byHost.set(m.host, all.filter((x) => x.hostKind !== 2 || x.host === m.host));
    }
  }

  match(req: RouteRequest): RouteMatch | null {
    const list = this.#byHost.get(req.host) ?? this.#fallback;
    for (let i = 0; i < list.length; i++) {
      const m = list[i]!;
      const r = matches(m, req);
      if (r === null) continue;
      const httpsOnly = req.scheme === 'http' && !m.http;
      if (r === true) return { route: m.route, matchedLength: m.prefix.length, captures: null, httpsOnly };
      return { route: m.route, matchedLength: r[0].length, captures: r.groups ? { ...r.groups } : null, httpsOnly };
    }
    return null;
  }
}

const NEEDS_NORMALIZING = /%|\/\.|\/\//;
const UNRESERVED = /%(2[DdEe]|3[0-9]|[46][1-9A-Fa-f]|[57][0-9Aa]|5[Ff]|7[Ee])/g;

/**
 * Normalises a request path before routing (and proxies the normalised form):
 * percent-encoded unreserved characters decoded, duplicate slashes merged, dot
 * segments resolved — so /public/%2e%2e/admin cannot slip past a route that
 * protects /admin. Returns null for a path that climbs above the root.
 */
export function normalizePath(path: string): string | null {
  if (!NEEDS_NORMALIZING.test(path)) return path;
  const decoded = path.replace(UNRESERVED, (s) => String.fromCharCode(parseInt(s.slice(1), 16)));
  const out: string[] = [];
  const segments = decoded.split('/');
  for (let i = 1; i < segments.length; i++) {
    const seg = segments[i]!;
    if (seg === '.' || (seg === '' && i < segments.length - 1)) continue;
    if (seg === '..') {
      if (out.length === 0) return null;
      out.pop();
      continue;
    }
    out.push(seg);
  }
  const last = segments[segments.length - 1];
  if ((last === '.' || last === '..') && out[out.length - 1] !== '') out.push('');
  return '/' + out.join('/');
}

/**
 * Kong's sanitize_uri_postfix: the part after a stripped prefix never starts
 * with a dot segment (route /api, request /api../admin must not climb out of
 * the service path). The request path is normalised already, so one leading
 * dot segment is all there can be.
 */
function sanitizePostfix(p: string): string {
  if (p.charCodeAt(0) !== 46) return p;
  if (p === '.' || p === '..') return '';
  if (p.startsWith('./')) return p.slice(2);
  if (p.startsWith('../')) return p.slice(3);
  return p;
}

/**
 * The upstream path, exactly as Kong builds it (kong/router/utils.lua,
 * get_upstream_uri_v0 and the v1 branch of the traditional router; the table
 * under path_handling in Kong's Admin API docs):
 * - the postfix is what follows the stripped prefix (strip_path and a path
 *   matched), else the request path without its leading slash;
 * - v0 joins service path and postfix with exactly one slash; a request that
 *   ends with a slash keeps it;
 * - v1 concatenates, dropping one slash when both sides have one.
 */
export function upstreamPath(servicePath: string | undefined, path: string, matchedLength: number, strip: boolean, handling: 'v0' | 'v1'): string {
  const base = servicePath ?? '/';
  const postfix = sanitizePostfix(strip && matchedLength > 0 ? path.slice(matchedLength) : path.slice(1));
  const baseSlash = base.charCodeAt(base.length - 1) === 47;
  if (!strip) {
    if (baseSlash || handling === 'v1') return base + path.slice(1);
    return path === '/' ? base : base + path;
  }
  const postfixSlash = postfix.charCodeAt(0) === 47;
  if (handling === 'v1') return baseSlash && postfixSlash ? base.slice(0, -1) + postfix : base + postfix;
  if (baseSlash) {
    if (postfix === '') return base === '/' || path.charCodeAt(path.length - 1) === 47 ? base : base.slice(0, -1);
    return postfixSlash ? base.slice(0, -1) + postfix : base + postfix;
  }
  if (postfix === '') return path.length > 1 && path.charCodeAt(path.length - 1) === 47 ? base + '/' : base;
  return postfixSlash ? base + postfix : base + '/' + postfix;
}

/**
 * The statsd plugin's metrics (kong/plugins/statsd/log.lua), compiled once per
 * config into a list of emitters. Without tag_style the service, consumer and
 * status are part of the metric name, as in Kong:
 *   <prefix>.service.<service>.request.count, ….status.<code>,
 *   ….user.<consumer>.request.count, <prefix>.route.<route id>.user.<consumer>.status.<code>
 * (requests that matched no service: <prefix>.global.unmatched.…). With
 * tag_style they become tags of fixed metric names (<prefix>.request.count
 * #service:…,route:…,workspace:default,status:…,consumer:…).
 *
 * Values that come from requests or entities (consumer usernames and custom
 * ids, service names) never break a line: in a metric name their dots become
 * underscores, as Kong does for service names and the hostname, and so do the
 * characters StatsD and the tag styles use as separators (: | @ # , = [ ] and
 * white space, newlines included); in a tag value or a set member only those
 * separators are replaced.
 */
import { roundMs, type PdkConsumer, type PdkContext } from '../../pdk/index.ts';
import type { StatsdConfig, StatsdMetric } from './schema.ts';

export type Send = (name: string, value: number | string, type: string, sampleRate: number | undefined, tags: string[] | undefined) => void;
type Emitter = (ctx: PdkContext, scope: string, tags: string[] | null, send: Send) => void;

const TYPE: Record<StatsdMetric['stat_type'], string> = { counter: 'c', gauge: 'g', histogram: 'h', meter: 'm', set: 's', timer: 'ms' };
const WORKSPACE = 'default';

const CONSUMER: Record<string, (c: PdkConsumer) => string | null> = {
  consumer_id: (c) => c.id,
  custom_id: (c) => c.custom_id,
  username: (c) => c.username,
};

/** Separators of StatsD lines (name:value|type|@rate|#tags), of the tag styles (, = # [ ]) and white space. */
const SEPARATORS = /[\s,:=|#@[\]]/g;
const NAME_SEPARATORS = /[.\s,:=|#@[\]]/g;
/** A tag value or a set member: the separators become underscores. */
const tagValue = (v: string) => v.replace(SEPARATORS, '_');
/** A part of a metric name: dots too (Kong's rule for service names), so a value is one level of the name. */
const nameSegment = (v: string) => v.replace(NAME_SEPARATORS, '_');

/** The service part of a metric name (Kong: dots become underscores; the host is the service's configured one; null = unnamed). */
function serviceIdOf(kind: string, ctx: PdkContext): string | null {
  const s = ctx.service!;
  switch (kind) {
    case 'service_id':
      return s.id;
    case 'service_name':
      return s.name;
    case 'service_host':
      return s.host ?? null;
    default:
      return s.name ?? s.host ?? null;
  }
}

/** Plain values: [name without tags, name in Kong's naming, value of the request or null to skip]. */
const VALUES: Record<string, [string, (ctx: PdkContext) => number | null]> = {
  request_count: ['request.count', () => 1],
  request_size: ['request.size', (ctx) => ctx.bytesReceived],
  response_size: ['response.size', (ctx) => ctx.bytesSent],
  latency: ['latency', (ctx) => roundMs(ctx.timings.total)],
  upstream_latency: ['upstream_latency', (ctx) => (ctx.timings.upstreamStart < 0 ? null : roundMs(ctx.timings.upstream))],
  kong_latency: ['kong_latency', (ctx) => roundMs(ctx.timings.gateway)],
};

function emitter(metric: StatsdMetric, conf: StatsdConfig, prefix: string): Emitter | null {
  const type = TYPE[metric.stat_type];
  const rate = metric.sample_rate;
  const consumerOf = CONSUMER[metric.consumer_identifier ?? conf.consumer_identifier_default]!;
  /** The consumer's identifier as a name segment and as a tag value / set member, or null. */
  const cid = (ctx: PdkContext) => {
    const v = ctx.consumer === null ? null : consumerOf(ctx.consumer);
    return v === null ? null : { segment: nameSegment(v), value: tagValue(v) };
  };
  const name = (scope: string, rest: string) => `${prefix}.${scope}.${rest}`;
  const tagged = (rest: string) => `${prefix}.${rest}`;
  const plus = (tags: string[], ...more: string[]) => tags.concat(more);
  const value = VALUES[metric.name];
  if (value !== undefined) {
    const [stat, get] = value;
    return (ctx, scope, tags, send) => {
      const v = get(ctx);
      if (v !== null) send(tags === null ? name(scope, stat) : tagged(stat), v, type, rate, tags ?? undefined);
    };
  }
  switch (metric.name) {
    case 'status_count':
      return (ctx, scope, tags, send) => {
        const code = ctx.response.status;
        if (tags === null) send(name(scope, `status.${code}`), 1, type, rate, undefined);
        else send(tagged('status.count'), 1, type, rate, plus(tags, `status:${code}`));
      };
    case 'unique_users':
      return (ctx, scope, tags, send) => {
        const c = cid(ctx);
        if (c !== null) send(tags === null ? name(scope, 'user.uniques') : tagged('user.uniques'), c.value, 's', undefined, tags ?? undefined);
      };
    case 'request_per_user':
      return (ctx, scope, tags, send) => {
        const c = cid(ctx);
        if (c === null) return;
        if (tags === null) send(name(scope, `user.${c.segment}.request.count`), 1, type, rate, undefined);
        else send(tagged('user.request.count'), 1, type, rate, plus(tags, `consumer:${c.value}`));
      };
    case 'status_count_per_user':
      return (ctx, scope, tags, send) => {
        const c = cid(ctx);
        if (c === null) return;
        const code = ctx.response.status;
        if (tags === null) send(name(scope, `user.${c.segment}.status.${code}`), 1, type, rate, undefined);
        else send(tagged('user.status.count'), 1, type, rate, plus(tags, `consumer:${c.value}`, `status:${code}`));
      };
    case 'status_count_per_workspace':
      return (ctx, scope, tags, send) => {
        const code = ctx.response.status;
        if (tags === null) send(name(scope, `workspace.${WORKSPACE}.status.${code}`), 1, type, rate, undefined);
        else send(tagged('workspace.status.count'), 1, type, rate, plus(tags, `status:${code}`));
      };
    case 'status_count_per_user_per_route':
      return (ctx, _scope, tags, send) => {
        const c = cid(ctx);
        if (c === null || ctx.route === null) return;
        const code = ctx.response.status;
        if (tags === null) send(`${prefix}.route.${ctx.route.id}.user.${c.segment}.status.${code}`, 1, type, rate, undefined);
        else send(tagged('route.user.status.count'), 1, type, rate, plus(tags, `consumer:${c.value}`, `status:${code}`));
      };
    default:
      return null; // shdict_usage: nginx shared dictionaries, which Palisade does not have
  }
}

export interface CompiledMetrics {
  /** Send this request's metrics. */
  (ctx: PdkContext, send: Send): void;
}

export function compileMetrics(conf: StatsdConfig, prefix: string): CompiledMetrics {
  const list = conf.metrics
    .map((m) => ({ emit: emitter(m, conf, prefix), service: m.service_identifier ?? conf.service_identifier_default }))
    .filter((e): e is { emit: Emitter; service: StatsdMetric['service_identifier'] & string } => e.emit !== null);
  const tagStyle = conf.tag_style ?? null;
  return (ctx, send) => {
    let tags: string[] | null = null;
    if (tagStyle !== null) {
      tags = [`workspace:${WORKSPACE}`];
      if (ctx.service !== null) tags.push(`service:${tagValue(serviceIdOf(conf.service_identifier_default, ctx) ?? 'unnamed')}`);
      if (ctx.route !== null) tags.push(`route:${tagValue(ctx.route.name ?? ctx.route.id)}`);
    }
    // The scope of each service identifier in use, computed once per request.
    let lastKind = '';
    let scope = 'global.unmatched';
    for (const { emit, service } of list) {
      if (ctx.service !== null && service !== lastKind) {
        lastKind = service;
        const id = serviceIdOf(service, ctx);
        scope = id === null ? 'service.unnamed' : `service.${nameSegment(id)}`;
      }
      emit(ctx, scope, tags, send);
    }
  };
}

/** Tags for a style that carries them in the metric name (dogstatsd tags go to the client). */
export function withTags(style: 'influxdb' | 'librato' | 'signalfx', name: string, tags: string[]): string {
  const kv = tags.map((t) => {
    const i = t.indexOf(':');
    return `${t.slice(0, i)}=${t.slice(i + 1)}`; // values made safe when the tag was built
  });
  if (style === 'influxdb') return `${name},${kv.join(',')}`;
  if (style === 'librato') return `${name}#${kv.join(',')}`;
  return `${name}[${kv.join(',')}]`;
}

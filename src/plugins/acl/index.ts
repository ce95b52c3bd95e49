/**
 * acl — Kong's plugin (kong/plugins/acl/handler.lua, 3.x): allows (`allow`)
 * or refuses (`deny`) the identified consumer by its groups — its `acls`
 * entries, plus its consumer groups with include_consumer_groups. Runs after
 * the authentication plugins (priority 950).
 *
 * - No consumer and no authenticated groups: 401 "Unauthorized" (Kong's
 *   kong.response.error(401)).
 * - Groups not allowed (or denied): 403 "You cannot consume this service".
 * - Allowed: the groups go upstream in X-Consumer-Groups (comma-separated),
 *   unless hide_groups_header.
 * Groups an authentication plugin puts in ctx.shared.authenticated_groups
 * (Kong's kong.ctx.shared.authenticated_groups) are used when there is no
 * consumer or it is the anonymous one (or always, with
 * always_use_authenticated_groups), and then go upstream in
 * X-Authenticated-Groups.
 *
 * Group lists are compiled once per config version; the decision per
 * consumer is computed on its first request and then looked up.
 */
import { definePlugin, type PdkConsumer, type PdkContext, type PluginServices } from '../../pdk/index.ts';
import { AclCredentialSchema, AclSchema, validateAcl, type AclConfig } from './schema.ts';

const FORBIDDEN = 'You cannot consume this service';
const UNAUTHORIZED = 'Unauthorized';
/** Decision cached per consumer: blocked, or the header value ('' = none). */
const BLOCKED = true;
type Decision = typeof BLOCKED | string;

interface GroupLists {
  /** The consumer's acls groups. */
  readonly acl: ReadonlyMap<string, readonly string[]>;
  /** Its acls groups followed by its consumer groups (include_consumer_groups). */
  readonly all: ReadonlyMap<string, readonly string[]>;
}

function buildGroups(services: PluginServices): GroupLists {
  const acl = new Map<string, string[]>();
  for (const { consumer, credential } of services.credentials) {
    const list = acl.get(consumer.id) ?? [];
    const g = (credential as unknown as { group: string }).group;
    if (!list.includes(g)) list.push(g);
    acl.set(consumer.id, list);
  }
  const all = new Map<string, readonly string[]>();
  for (const c of services.consumers.all()) {
    const own = acl.get(c.id) ?? [];
    const merged = [...own];
    for (const g of c.groups) if (!merged.includes(g)) merged.push(g);
    all.set(c.id, Object.freeze(merged));
    if (own.length > 0) Object.freeze(own);
  }
  return { acl, all };
}

const NONE: readonly string[] = Object.freeze([]);

function create(config: AclConfig, services: PluginServices) {
  const lists = services.memo('groups', () => buildGroups(services));
  const deny = config.deny !== undefined && config.deny.length > 0;
  const set = new Set(deny ? config.deny : config.allow);
  const hide = config.hide_groups_header;
  const include = config.include_consumer_groups;
  const alwaysAuthenticated = config.always_use_authenticated_groups;
  const byConsumer = include ? lists.all : lists.acl;
  const decisions = new Map<string, Decision>();

  function decide(groups: readonly string[]): Decision {
    let member = false;
    for (let i = 0; i < groups.length; i++) {
      if (set.has(groups[i]!)) {
        member = true;
        break;
      }
    }
    if (deny ? member : !member) return BLOCKED;
    return hide ? '' : groups.join(', ');
  }

  /** Kong's get_authenticated_groups: an array in ctx.shared.authenticated_groups, else null. */
  function authenticatedGroups(ctx: PdkContext, consumer: PdkConsumer | null): readonly string[] | null {
    const g = ctx.shared.authenticated_groups;
    if (!Array.isArray(g)) return null;
    const groups = g.filter((x): x is string => typeof x === 'string');
    if (include && consumer !== null) for (const cg of consumer.groups) if (!groups.includes(cg)) groups.push(cg);
    return groups;
  }

  return {
    access(ctx: PdkContext) {
      const consumer = ctx.consumer;
      let groups: readonly string[] | null = null;
      if (consumer === null) {
        groups = authenticatedGroups(ctx, null);
        if (groups === null) return ctx.credential !== null ? ctx.reject(403, FORBIDDEN) : ctx.reject(401, UNAUTHORIZED);
      } else if (ctx.credential === null || alwaysAuthenticated) {
        // Authenticated groups override the anonymous consumer's (or, when configured, any consumer's) groups.
        groups = authenticatedGroups(ctx, consumer);
      }
      if (groups !== null) {
        const d = decide(groups);
        if (d === BLOCKED) return ctx.reject(403, FORBIDDEN);
        if (d !== '') ctx.request.setHeader('x-authenticated-groups', d);
        return;
      }
      let d = decisions.get(consumer!.id);
      if (d === undefined) {
        d = decide(byConsumer.get(consumer!.id) ?? NONE);
        decisions.set(consumer!.id, d);
      }
      if (d === BLOCKED) return ctx.reject(403, FORBIDDEN);
      if (d !== '') ctx.request.setHeader('x-consumer-groups', d);
    },
  };
}

export default definePlugin({
  name: 'acl',
  priority: 950,
  description: "Access control lists (Kong's acl): allows or denies the identified consumer by the groups it belongs to.",
  schema: AclSchema,
  validate: validateAcl,
  credential: { field: 'acls', schema: AclCredentialSchema },
  create,
});

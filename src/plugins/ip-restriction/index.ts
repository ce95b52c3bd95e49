/**
 * ip-restriction — Kong's plugin (kong/plugins/ip-restriction/handler.lua):
 * refuses clients whose IP is in `deny`, or not in `allow` when `allow` is
 * set (deny is checked first). The IP is the real client IP
 * (ctx.request.clientIp): the TCP peer, or — only when the peer is one of
 * `server.trusted_ips` — the first untrusted hop of X-Forwarded-For, so a
 * client cannot talk its way into `allow` (or out of `deny`) with a forged
 * header. Rejection: `status` (403) with `message` (Kong's default "IP
 * address not allowed: <client IP>").
 */
import { isIP } from 'node:net';
import { definePlugin, type PdkContext } from '../../pdk/index.ts';
import { IpSet, listError } from '../../pdk/ip-set.ts';
import { IpRestrictionSchema, type IpRestrictionConfig } from './schema.ts';

const NO_IP = 'Cannot identify the client IP address, unix domain sockets are not supported.';

const nonEmpty = (l: readonly string[] | undefined): l is readonly string[] => l !== undefined && l.length > 0;

/** Kong's entity check (at_least_one_of allow/deny) and the addresses themselves. */
function validate(config: IpRestrictionConfig): string | null {
  if (!nonEmpty(config.allow) && !nonEmpty(config.deny)) return "at least one of these fields must be non-empty: 'config.allow', 'config.deny'";
  return listError('allow', config.allow ?? []) ?? listError('deny', config.deny ?? []);
}

function create(config: IpRestrictionConfig) {
  const problem = validate(config);
  if (problem !== null) throw new Error(problem);
  const deny = nonEmpty(config.deny) ? new IpSet(config.deny) : null;
  const allow = nonEmpty(config.allow) ? new IpSet(config.allow) : null;
  const status = config.status;
  const message = config.message;

  return {
    access(ctx: PdkContext) {
      const ip = ctx.request.clientIp;
      if (isIP(ip) === 0) return ctx.reject(403, NO_IP);
      if ((deny !== null && deny.has(ip)) || (allow !== null && !allow.has(ip))) {
        return ctx.reject(status, message ?? `IP address not allowed: ${ip}`);
      }
    },
  };
}

export default definePlugin({
  name: 'ip-restriction',
  priority: 990,
  description: "IP restriction (Kong's ip-restriction): allow or deny clients by IPv4/IPv6 address or CIDR range, on the real client IP.",
  schema: IpRestrictionSchema,
  validate,
  create,
});

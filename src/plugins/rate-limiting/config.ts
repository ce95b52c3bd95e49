/**
 * Cross-field rules (Kong's custom_validator and entity checks, with Kong's
 * messages where Kong has one; the redis settings are checked by the PDK's
 * redisConfigError) and the periods in use.
 */
import { CLUSTER_POLICY, PERIODS, periodLimitsError, type Period } from '../../pdk/ratelimit.ts';
import { redisConfigError } from '../../pdk/redis-config.ts';
import type { RateLimitingConfig } from './schema.ts';

/** The configured periods, smallest first, with their limits. */
export function periodsOf(config: RateLimitingConfig): { periods: Period[]; limits: number[] } {
  const periods: Period[] = [];
  const limits: number[] = [];
  for (const p of PERIODS) {
    const v = config[p];
    if (typeof v === 'number') {
      periods.push(p);
      limits.push(v);
    }
  }
  return { periods, limits };
}

export function validate(config: RateLimitingConfig): string | null {
  const limits = periodLimitsError(config, '', (p) => `'config.${p}'`);
  if (limits !== null) return limits;
  if (config.policy === 'cluster') return CLUSTER_POLICY;
  if (config.limit_by === 'header' && config.header_name === undefined) return "header_name is required when limit_by is 'header'";
  if (config.limit_by === 'path' && config.path === undefined) return "path is required when limit_by is 'path'";
  if (config.policy !== 'redis' && config.sync_rate !== -1) return 'sync_rate can only be used with the redis policy';
  if (config.policy === 'redis' && config.sync_rate !== -1 && config.sync_rate < 0.02) return 'sync_rate must be greater than 0.02, or -1 to disable';
  return redisConfigError(config);
}

/**
 * bot-detection — Kong's plugin (kong/plugins/bot-detection/handler.lua):
 * the User-Agent is checked against the user's `allow` regexes (a match
 * passes), then `deny`, then a built-in list of known bots, crawlers and
 * scanners (rules.ts: Kong's list plus vulnerability scanners and attack
 * tools). A deny-listed User-Agent or a bot gets Kong's 403 "Forbidden";
 * several User-Agent headers get Kong's 400 "Only one User-Agent header
 * allowed". A request without a User-Agent passes, as in Kong, unless
 * `missing_user_agent: deny` (Palisade).
 */
import { definePlugin, type PdkContext } from '../../pdk/index.ts';
import { ALLOW_LISTED, ALLOWED, patternError, UserAgentMatcher } from './matcher.ts';
import { BotDetectionSchema, type BotDetectionConfig } from './schema.ts';

const FORBIDDEN = 'Forbidden';
const SEVERAL = 'Only one User-Agent header allowed';

function validate(config: BotDetectionConfig): string | null {
  return patternError('allow', config.allow) ?? patternError('deny', config.deny);
}

/** More than one User-Agent header (node:http keeps only the first in `headers`). */
function several(raw: readonly string[]): boolean {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const h = raw[i]!;
    if (h.length === 10 && h.toLowerCase() === 'user-agent' && ++n > 1) return true;
  }
  return false;
}

function create(config: BotDetectionConfig) {
  const problem = validate(config);
  if (problem !== null) throw new Error(problem);
  const matcher = new UserAgentMatcher(config.allow, config.deny);
  const denyMissing = config.missing_user_agent === 'deny';

  return {
    access(ctx: PdkContext) {
      const ua = ctx.request.header('user-agent');
      if (ua === undefined || ua.trim() === '') {
        if (ua !== undefined && several(ctx.request.rawHeaders)) return ctx.reject(400, SEVERAL);
        return denyMissing ? ctx.reject(403, FORBIDDEN) : undefined;
      }
      if (several(ctx.request.rawHeaders)) return ctx.reject(400, SEVERAL);
      const v = matcher.verdict(ua);
      if (v === ALLOWED) return;
      if (v === ALLOW_LISTED) return void ctx.decide('allow', 'User-Agent in the allow list');
      return ctx.reject(403, FORBIDDEN);
    },
  };
}

export default definePlugin({
  name: 'bot-detection',
  priority: 2500,
  description: "Bot detection (Kong's bot-detection): refuses known bots, crawlers and scanners by User-Agent, with allow and deny regex lists.",
  schema: BotDetectionSchema,
  validate,
  create,
});

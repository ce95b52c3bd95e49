/**
 * Config of the acl plugin: Kong's fields, names, defaults and entity checks
 * (kong/plugins/acl/schema.lua, 3.x). The credential
 * (consumers[].acls[]) is Kong's: one `group` per entry.
 */
import { Type, type Static } from '@sinclair/typebox';

const Groups = (what: string) =>
  Type.Optional(
    Type.Array(Type.String({ minLength: 1, description: 'A group name.' }), {
      description: `Arbitrary group names that are ${what} to consume the service or route. One of \`allow\` or \`deny\` must be specified.`,
    }),
  );

export const AclSchema = Type.Object(
  {
    allow: Groups('allowed'),
    deny: Groups('not allowed'),
    hide_groups_header: Type.Boolean({
      default: false,
      description: 'Do not send the `X-Consumer-Groups` (or `X-Authenticated-Groups`) header to the upstream service.',
    }),
    include_consumer_groups: Type.Boolean({
      default: false,
      description: 'Also match the consumer groups (`consumer_groups`, a consumer\'s `groups`) the consumer belongs to against `allow`/`deny`.',
    }),
    always_use_authenticated_groups: Type.Boolean({
      default: false,
      description:
        'Use the groups an authentication plugin put in `authenticated_groups` (ctx.shared) even when a consumer is identified; when there are none, fall back to the consumer\'s groups. By default they are used only when there is no consumer or it is the anonymous one.',
    }),
  },
  { additionalProperties: false, description: 'Allow or deny consumers by the groups they belong to.' },
);

export type AclConfig = Static<typeof AclSchema>;

export const AclCredentialSchema = Type.Object({
  group: Type.String({ minLength: 1, description: 'A group the consumer belongs to.' }),
});

const nonEmpty = (a: string[] | undefined) => a !== undefined && a.length > 0;

/** Kong's entity checks (only_one_of, at_least_one_of), same messages. */
export function validateAcl(config: AclConfig): string | null {
  if (nonEmpty(config.allow) && nonEmpty(config.deny)) return "only one of these fields must be non-empty: 'config.allow', 'config.deny'";
  if (!nonEmpty(config.allow) && !nonEmpty(config.deny)) return "at least one of these fields must be non-empty: 'config.allow', 'config.deny'";
  return null;
}

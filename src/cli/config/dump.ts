/**
 * `palisade config dump [FILE]` — the running gateway's config (or FILE's, as
 * loaded: defaults filled) as YAML or JSON, secrets masked unless
 * --include-secrets. A masked dump can be synced back: each mask keeps the
 * gateway's current value.
 */
import { serializeConfig, writeFileAtomic, type DumpFormat } from '../../admin/config-file.ts';
import { MASK, redactConfig } from '../../admin/redact.ts';
import { loadConfigFile } from '../../config/load.ts';
import { callAdmin, unexpected, type AdminOptions } from './admin-client.ts';
import { orConfigErrors } from './print.ts';

export interface DumpOptions extends AdminOptions {
  output?: string;
  format: DumpFormat;
  includeSecrets?: boolean;
}

async function running(o: DumpOptions): Promise<unknown> {
  const r = await callAdmin(o, 'GET', `config?format=json&secrets=${o.includeSecrets ? 'include' : 'mask'}`);
  if (r.status !== 200) throw unexpected(r, 'config dump');
  return r.body;
}

export async function dumpCommand(file: string | undefined, o: DumpOptions): Promise<void> {
  const cfg = await orConfigErrors('nothing was dumped', async () => (file === undefined ? running(o) : loadConfigFile(file)));
  if (cfg === null) return;
  const masked = !o.includeSecrets;
  let text = serializeConfig(masked && file !== undefined ? redactConfig(cfg) : cfg, o.format);
  if (o.format === 'yaml') {
    const source = file ?? o.admin;
    text = `# palisade config dump of ${source}${masked ? `; secrets masked: on config diff/sync, '${MASK}' keeps the gateway's current value` : '; SECRETS INCLUDED'}\n${text}`;
  }
  if (o.output === undefined || o.output === '-') process.stdout.write(text);
  else {
    await writeFileAtomic(o.output, text);
    console.error(`wrote ${o.output}${masked ? ' (secrets masked)' : ' (secrets included: keep it private)'}`);
  }
}

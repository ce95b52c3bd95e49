/**
 * `palisade mock SPEC [--listen HOST:PORT]`: serve a mock of the API until
 * SIGINT/SIGTERM (then exit 0). Exit 1 when the document is not a usable
 * OpenAPI 3.0/3.1 document or the address cannot be listened on, 2 when the
 * document cannot be read. One line per request on stderr.
 */
import type { AddressInfo } from 'node:net';
import { parseListen } from '../core/server.ts';
import { loadOpenApi, OpenApiError, OpenApiUnreadableError, type OpenApiDocument } from '../openapi/document.ts';
import { startMock } from '../openapi/mock.ts';
import { requestValidator } from '../openapi/mock-validate.ts';

export const MOCK_LISTEN = '127.0.0.1:4010';

export async function mockCommand(spec: string, opts: { listen?: string; validation: boolean }): Promise<void> {
  let doc: OpenApiDocument;
  try {
    doc = await loadOpenApi(/^https?:\/\//.test(spec) ? { url: spec } : { file: spec });
  } catch (err) {
    if (!(err instanceof OpenApiError)) throw err;
    const unreadable = err instanceof OpenApiUnreadableError;
    console.error(unreadable ? `palisade: cannot read ${spec}: ${err.problem}` : `palisade: ${err.message}`);
    process.exitCode = unreadable ? 2 : 1;
    return;
  }
  const at = parseListen(opts.listen ?? MOCK_LISTEN);
  if (at === null) {
    console.error('palisade: --listen off: the mock needs an address');
    process.exitCode = 2;
    return;
  }
  const validate = opts.validation ? requestValidator(doc) : undefined;
  let server;
  try {
    server = await startMock(doc, at.host, at.port, { validate, log: (line) => console.error(`palisade mock: ${line}`) });
  } catch (err) {
    console.error(`palisade: cannot listen on ${at.host}:${at.port}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    process.exitCode = 1;
    return;
  }
  const { port } = server.address() as AddressInfo;
  const host = at.host.includes(':') ? `[${at.host}]` : at.host;
  const title = String((doc.raw.info as { title?: unknown } | undefined)?.title ?? spec);
  console.error(`palisade mock: ${title}: ${doc.operations.length} operations on http://${host}:${port}${validate ? ', requests validated' : ''}`);
  for (const w of doc.warnings) console.error(`palisade mock: warning: ${w}`);
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

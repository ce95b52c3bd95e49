/**
 * correlation-id — Kong's plugin (kong/plugins/correlation-id/handler.lua):
 * keeps a non-empty incoming id, otherwise generates one and sends it
 * upstream; with echo_downstream the id is also set on the response — on
 * gateway-generated responses too (then generated if access never ran).
 * The id is left in ctx.shared.correlation_id for other plugins and logs
 * (Kong's serialized `correlation_id`).
 */
import { randomUUID } from 'node:crypto';
import { definePlugin, type PdkContext } from '../../pdk/index.ts';
import { CorrelationIdSchema, type CorrelationIdConfig } from './schema.ts';

/** Where the id is kept for the response phase and for other plugins. */
const SHARED_KEY = 'correlation_id';

// Kong keeps one UUID and one counter per worker (init_worker), shared by all instances.
const workerUuid = randomUUID();
let workerCounter = 0;
/** Stands in for nginx's connection serial number where the PDK offers none. */
let requestSerial = 0;

/** Optional connection facts a core may expose; used by the tracker generator when present. */
interface ConnectionFacts {
  readonly localAddress?: string;
  readonly connectionId?: number;
  readonly connectionRequests?: number;
}

type Generator = (ctx: PdkContext) => string;

const generators: Record<CorrelationIdConfig['generator'], Generator> = {
  uuid: () => randomUUID(),
  'uuid#counter': () => `${workerUuid}#${++workerCounter}`,
  // Kong: "%s-%s-%d-%s-%s-%0.3f" of server_addr, server_port, worker pid,
  // connection serial, requests on the connection, current time.
  tracker: (ctx) => {
    const req = ctx.request as PdkContext['request'] & ConnectionFacts;
    const serial = ++requestSerial;
    return `${req.localAddress ?? req.host}-${req.port}-${process.pid}-${req.connectionId ?? serial}-${req.connectionRequests ?? 1}-${(Date.now() / 1000).toFixed(3)}`;
  },
};

function create(config: CorrelationIdConfig) {
  const headerName = config.header_name.toLowerCase();
  const generate = generators[config.generator];
  const echo = config.echo_downstream;

  return {
    access(ctx: PdkContext) {
      let id = ctx.request.header(headerName);
      if (id === undefined || id === '') {
        id = generate(ctx);
        ctx.request.setHeader(config.header_name, id);
      }
      ctx.shared[SHARED_KEY] = id;
    },

    response: echo
      ? (ctx: PdkContext) => {
          const kept = ctx.shared[SHARED_KEY];
          let id = typeof kept === 'string' ? kept : ctx.request.header(headerName);
          if (id === undefined || id === '') id = generate(ctx);
          ctx.response.setHeader(config.header_name, id);
        }
      : undefined,
  };
}

export default definePlugin({
  name: 'correlation-id',
  priority: 100001,
  description: "Correlation id (Kong's correlation-id): a unique id per request in a header, sent upstream and optionally echoed to the client.",
  schema: CorrelationIdSchema,
  create,
});

/**
 * The declarative config schema, declared once: runtime validation (Ajv), static
 * types (TypeBox), defaults, and the published JSON Schema (docs/palisade.schema.json).
 * Entity and field names, nesting and defaults follow Kong's decK format 3.0;
 * fields Kong does not have are marked "Palisade:" in their description.
 */
import { Type, type Static, type TObject, type TProperties } from '@sinclair/typebox';
import { Enum } from '../pdk/schema.ts';
import { allPlugins } from '../plugins/registry.ts';

/** Objects refuse unknown fields: a typo is an error, not a silent no-op. */
function Obj<P extends TProperties>(props: P, description: string, withDefault = false): TObject<P> {
  return Type.Object(props, withDefault ? { additionalProperties: false, description, default: {} } : { additionalProperties: false, description });
}

const Id = Type.String({ description: 'Entity id (UUID). Generated from the name when absent, so it is stable across nodes.' });
const Tags = Type.Array(Type.String(), { default: [], description: 'Free-form tags, for filtering.' });
const Timeout = (what: string) =>
  Type.Integer({ minimum: 1, maximum: 2147483646, default: 60000, description: `${what} timeout in milliseconds.` });
const Ref = Type.Union([
  Type.String(),
  Obj(
    {
      id: Type.Optional(Type.String({ description: 'Id of the referenced entity.' })),
      name: Type.Optional(Type.String({ description: 'Name of the referenced entity.' })),
      username: Type.Optional(Type.String({ description: 'Username of the referenced consumer.' })),
    },
    'Reference by id or name.',
  ),
], {
  description: 'Reference to another entity: its name (or username), or { id } / { name }.',
});

export const PluginEntity = Obj(
  {
    name: Type.String({ description: 'Plugin name, e.g. cors.' }),
    id: Type.Optional(Id),
    instance_name: Type.Optional(Type.String({ description: 'A name for this plugin instance.' })),
    config: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: "The plugin's own configuration; see its schema." })),
    enabled: Type.Boolean({ default: true, description: 'Whether the plugin runs.' }),
    protocols: Type.Array(Enum(['grpc', 'grpcs', 'http', 'https']), {
      default: ['http', 'https'],
      description: "Request protocols the plugin runs for. grpc and grpcs (in Kong's default, so in every decK dump) are accepted; Palisade serves http and https.",
    }),
    tags: Tags,
    service: Type.Optional(Ref),
    route: Type.Optional(Ref),
    consumer: Type.Optional(Ref),
  },
  'A plugin: global at top level, or scoped by nesting under a service, route or consumer (or by its service/route/consumer references).',
);

const HttpMethod = Type.String({ pattern: '^[A-Z][A-Z0-9_-]*$', description: 'HTTP method, upper-case.' });

export const RouteEntity = Obj(
  {
    name: Type.Optional(Type.String({ description: 'Unique route name.' })),
    id: Type.Optional(Id),
    protocols: Type.Array(Enum(['http', 'https']), {
      default: ['http', 'https'],
      minItems: 1,
      description: 'Protocols the route matches.',
    }),
    methods: Type.Optional(Type.Array(HttpMethod, { description: 'Methods the route matches; absent = any.' })),
    hosts: Type.Optional(
      Type.Array(Type.String({ pattern: '^(\\*\\.)?[A-Za-z0-9.-]+(\\.\\*)?(:[0-9]+)?$' }), {
        description: 'Host header values: exact (api.example.com), wildcard (*.example.com, example.*), optional :port.',
      }),
    ),
    paths: Type.Optional(
      Type.Array(Type.String({ pattern: '^(/|~)' }), {
        description: 'Path prefixes (/api) or regexes starting with ~ (~/users/(?<id>\\d+)$), anchored at the start.',
      }),
    ),
    headers: Type.Optional(
      Type.Record(Type.String(), Type.Array(Type.String(), { minItems: 1 }), {
        description: 'Header name → accepted values (case-insensitive; a value starting with ~* is a regex).',
      }),
    ),
    snis: Type.Optional(Type.Array(Type.String(), { description: 'TLS SNI values the route matches (https only).' })),
    https_redirect_status_code: Enum([426, 301, 302, 307, 308], {
      default: 426,
      description: 'Status answered when the route only allows https and the request came over http.',
    }),
    regex_priority: Type.Integer({ default: 0, description: 'Order among regex paths: higher first.' }),
    priority: Type.Integer({ default: 0, description: 'Palisade: breaks ties between equally specific routes; higher wins.' }),
    strip_path: Type.Boolean({ default: true, description: 'Remove the matched path prefix before proxying.' }),
    path_handling: Enum(['v0', 'v1'], { default: 'v0', description: 'How the service path and the request path are joined.' }),
    preserve_host: Type.Boolean({ default: false, description: "Send the client's Host header upstream instead of the service host." }),
    request_buffering: Type.Boolean({ default: true, description: 'Accepted for Kong compatibility; Palisade always streams.' }),
    response_buffering: Type.Boolean({ default: true, description: 'Accepted for Kong compatibility; Palisade always streams.' }),
    exclude_plugins: Type.Array(Type.String(), {
      default: [],
      description: 'Palisade: names of global or service-level plugins that do not run on this route.',
    }),
    tags: Tags,
    service: Type.Optional(Ref),
    plugins: Type.Array(PluginEntity, { default: [], description: 'Plugins scoped to this route.' }),
  },
  'A route: which requests go to a service.',
);

export const ServiceEntity = Obj(
  {
    name: Type.Optional(Type.String({ description: 'Unique service name.' })),
    id: Type.Optional(Id),
    url: Type.Optional(Type.String({ description: 'Shorthand for protocol, host, port and path.' })),
    protocol: Enum(['http', 'https'], { default: 'http', description: 'Protocol used upstream.' }),
    host: Type.Optional(Type.String({ description: 'Upstream host name or IP, or the name of an upstream entity.' })),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 80, description: 'Upstream port.' }),
    path: Type.Optional(Type.String({ pattern: '^/', description: 'Path prefixed to the proxied path.' })),
    retries: Type.Integer({ minimum: 0, maximum: 32767, default: 5, description: 'Retries on a connection failure (idempotent requests only).' }),
    connect_timeout: Timeout('Connect'),
    write_timeout: Timeout('Write (accepted for Kong compatibility, not enforced yet; server.request_timeout bounds uploads)'),
    read_timeout: Timeout('Read (response headers and body idle)'),
    tls_verify: Type.Optional(Type.Boolean({ description: "Verify the upstream's TLS certificate (default true)." })),
    ca_certificates: Type.Optional(Type.Array(Type.String(), { description: 'Palisade: PEM CA certificates trusted for the upstream TLS.' })),
    enabled: Type.Boolean({ default: true, description: 'A disabled service and its routes are not served.' }),
    exclude_plugins: Type.Array(Type.String(), {
      default: [],
      description: 'Palisade: names of global plugins that do not run on this service.',
    }),
    tags: Tags,
    routes: Type.Array(RouteEntity, { default: [], description: 'Routes of this service.' }),
    plugins: Type.Array(PluginEntity, { default: [], description: 'Plugins scoped to this service.' }),
  },
  'A service: an upstream API.',
);

const HealthyActive = Obj(
  {
    interval: Type.Number({ minimum: 0, default: 0, description: 'Seconds between probes of healthy targets (0 = off).' }),
    http_statuses: Type.Array(Type.Integer(), { default: [200, 302], description: 'Statuses counted as success.' }),
    successes: Type.Integer({ minimum: 0, default: 0, description: 'Successes that make an unhealthy target healthy.' }),
  },
  'When a target is healthy.', true,
);
const UnhealthyActive = Obj(
  {
    interval: Type.Number({ minimum: 0, default: 0, description: 'Seconds between probes of unhealthy targets (0 = off).' }),
    http_statuses: Type.Array(Type.Integer(), { default: [429, 404, 500, 501, 502, 503, 504, 505], description: 'Statuses counted as failure.' }),
    tcp_failures: Type.Integer({ minimum: 0, default: 0, description: 'TCP failures that make a target unhealthy.' }),
    timeouts: Type.Integer({ minimum: 0, default: 0, description: 'Timeouts that make a target unhealthy.' }),
    http_failures: Type.Integer({ minimum: 0, default: 0, description: 'HTTP failures that make a target unhealthy.' }),
  },
  'When a target is unhealthy.', true,
);
const HealthyPassive = Obj(
  {
    http_statuses: Type.Array(Type.Integer(), {
      default: [200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 306, 307, 308],
      description: 'Statuses counted as success.',
    }),
    successes: Type.Integer({ minimum: 0, default: 0, description: 'Successes that make an unhealthy target healthy.' }),
  },
  'When a target is healthy.', true,
);
const UnhealthyPassive = Obj(
  {
    http_statuses: Type.Array(Type.Integer(), { default: [429, 500, 503], description: 'Statuses counted as failure.' }),
    tcp_failures: Type.Integer({ minimum: 0, default: 0, description: 'TCP failures that eject a target.' }),
    timeouts: Type.Integer({ minimum: 0, default: 0, description: 'Timeouts that eject a target.' }),
    http_failures: Type.Integer({ minimum: 0, default: 0, description: 'HTTP failures that eject a target.' }),
  },
  'When a target is ejected.', true,
);

export const UpstreamEntity = Obj(
  {
    name: Type.String({ description: 'Upstream name; a service whose host is this name balances over the targets.' }),
    id: Type.Optional(Id),
    algorithm: Enum(['round-robin', 'least-connections', 'consistent-hashing'], {
      default: 'round-robin',
      description: 'Load-balancing algorithm over the weighted targets.',
    }),
    hash_on: Enum(['none', 'ip', 'header', 'cookie', 'path', 'query_arg', 'consumer'], {
      default: 'none',
      description: 'What consistent-hashing hashes.',
    }),
    hash_fallback: Enum(['none', 'ip', 'header', 'cookie', 'path', 'query_arg', 'consumer', 'uri_capture'], {
      default: 'none',
      description: "What to hash when hash_on yields nothing. Accepted for Kong compatibility; Palisade implements only 'none' (any other value is refused).",
    }),
    hash_on_header: Type.Optional(Type.String({ description: 'Header to hash when hash_on is header.' })),
    hash_on_cookie: Type.Optional(Type.String({ description: 'Cookie to hash when hash_on is cookie.' })),
    hash_on_cookie_path: Type.String({ default: '/', description: 'Accepted for Kong compatibility (Path of the cookie Kong generates); Palisade does not set the cookie.' }),
    hash_on_query_arg: Type.Optional(Type.String({ description: 'Query argument to hash when hash_on is query_arg.' })),
    use_srv_name: Type.Boolean({ default: false, description: "Accepted for Kong compatibility; Palisade implements only false (true is refused)." }),
    slots: Type.Integer({ minimum: 10, maximum: 65536, default: 10000, description: 'Accepted for Kong compatibility; consistent hashing is weighted rendezvous hashing and needs no ring.' }),
    host_header: Type.Optional(Type.String({ description: 'Host header (and TLS server name) sent to the targets; unset, each target gets its own host:port (Kong).' })),
    healthchecks: Obj(
      {
        threshold: Type.Number({ minimum: 0, maximum: 100, default: 0, description: 'Minimum healthy weight % for the upstream to be used.' }),
        active: Obj(
          {
            type: Enum(['http', 'https'], { default: 'http', description: 'Probe protocol.' }),
            http_path: Type.String({ default: '/', description: 'Path probed.' }),
            https_verify_certificate: Type.Boolean({
              default: true,
              description: "Verify the target's certificate on https probes. Palisade always verifies (false is refused).",
            }),
            timeout: Type.Number({ minimum: 0, default: 1, description: 'Probe timeout in seconds.' }),
            concurrency: Type.Integer({ minimum: 1, default: 10, description: 'Probes run at once.' }),
            healthy: HealthyActive,
            unhealthy: UnhealthyActive,
          },
          'Active health checks: periodic HTTP probes.', true,
        ),
        passive: Obj(
          {
            type: Enum(['http', 'https'], { default: 'http', description: 'Traffic type.' }),
            healthy: HealthyPassive,
            unhealthy: UnhealthyPassive,
          },
          'Passive health checks: ejection after failures seen in real traffic.', true,
        ),
      },
      'Health checks of the targets.', true,
    ),
    targets: Type.Array(
      Obj(
        {
          target: Type.String({ pattern: '^[^\\s:]+(:[0-9]+)?$|^\\[[0-9a-fA-F:]+\\](:[0-9]+)?$', description: 'host:port (port defaults to 8000, like Kong).' }),
          id: Type.Optional(Id),
          weight: Type.Integer({ minimum: 0, maximum: 65535, default: 100, description: 'Relative weight; 0 = disabled.' }),
          tags: Tags,
        },
        'A target of an upstream.',
      ),
      { default: [], description: 'The targets traffic is balanced over.' },
    ),
    tags: Tags,
  },
  'An upstream: a virtual host name balanced over targets, with health checks.',
);

/**
 * Credential arrays on consumers come from the plugins that declare them
 * (key-auth → keyauth_credentials, …): each plugin owns its credential schema.
 */
function credentialFields(): TProperties {
  const out: TProperties = {};
  for (const p of allPlugins()) {
    const c = p.credential;
    if (!c) continue;
    const item = Type.Object(
      { ...(c.schema as unknown as TObject).properties, id: Type.Optional(Id), tags: Tags },
      { additionalProperties: false, description: `A ${p.name} credential.` },
    );
    out[c.field] = Type.Array(item, { default: [], description: `Credentials for the ${p.name} plugin.` });
  }
  return out;
}

export const ConsumerEntity = Obj(
  {
    username: Type.Optional(Type.String({ description: 'Unique username.' })),
    custom_id: Type.Optional(Type.String({ description: 'Unique id from another system.' })),
    id: Type.Optional(Id),
    tags: Tags,
    groups: Type.Array(Type.Union([Type.String(), Obj({ name: Type.String({ description: 'Consumer group name.' }), id: Type.Optional(Id) }, 'A group reference.')]), {
      default: [],
      description: 'Consumer groups this consumer belongs to (names of consumer_groups).',
    }),
    plugins: Type.Array(PluginEntity, { default: [], description: 'Plugins scoped to this consumer.' }),
    ...credentialFields(),
  },
  'A consumer: a client of the APIs, with its credentials.',
);

export const ConsumerGroupEntity = Obj(
  {
    name: Type.String({ description: 'Unique group name.' }),
    id: Type.Optional(Id),
    tags: Tags,
  },
  'A consumer group (Kong 3.x): consumers join it through their `groups`.',
);

export const CertificateEntity = Obj(
  {
    cert: Type.String({ description: 'PEM certificate (chain).' }),
    key: Type.String({ description: 'PEM private key.' }),
    id: Type.Optional(Id),
    snis: Type.Array(Type.Union([Type.String(), Obj({ name: Type.String({ description: 'Server name.' }), id: Type.Optional(Id), tags: Type.Optional(Tags) }, 'An SNI.')]), {
      default: [],
      description: 'Server names this certificate is served for (exact or *.wildcard).',
    }),
    client_ca: Type.Optional(Type.String({ description: 'Palisade: PEM CA certificate(s) that client certificates must chain to.' })),
    client_verify: Enum(['off', 'optional', 'required'], {
      default: 'off',
      description: 'Palisade: request a client certificate; "required" refuses the handshake without a valid one.',
    }),
    tags: Tags,
  },
  'A TLS certificate and the SNIs it serves.',
);

const Listen = Type.String({ pattern: '^(\\[[0-9a-fA-F:]+\\]|[^:\\s]+):[0-9]{1,5}$|^off$', description: 'HOST:PORT, or off.' });

export const ServerSection = Obj(
  {
    listen: Type.Optional(Listen),
    tls_listen: Type.Optional(Listen),
    admin_listen: Type.Optional(Listen),
    workers: Type.Optional(Type.Integer({ minimum: 1, maximum: 256, description: 'Worker processes (default: CPU cores).' })),
    trusted_ips: Type.Array(Type.String(), {
      default: [],
      description: 'Peers (IPs/CIDRs) whose X-Forwarded-* and X-Request-Id headers are believed.',
    }),
    via: Type.Boolean({ default: false, description: 'Add a Via header upstream and downstream.' }),
    request_id_header: Type.String({ default: 'x-request-id', pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", description: 'Header carrying the request id on request and response (case-insensitive).' }),
    max_header_size: Type.Integer({ minimum: 1024, maximum: 1048576, default: 16384, description: 'Largest request head in bytes; above: 431.' }),
    headers_timeout: Type.Integer({ minimum: 100, default: 10000, description: 'Time to receive the request head (ms); slow-loris protection: 408.' }),
    request_timeout: Type.Integer({ minimum: 0, default: 300000, description: 'Time to receive the whole request (ms); 0 = none.' }),
    keepalive_timeout: Type.Integer({ minimum: 0, default: 60000, description: 'Idle keep-alive connection lifetime (ms); 0 = no keep-alive (close after each response).' }),
    keepalive_requests: Type.Integer({ minimum: 0, default: 1000, description: 'Requests per client connection before it is closed (0 = unlimited).' }),
    upstream_keepalive_pool_size: Type.Integer({ minimum: 1, default: 512, description: 'Connections per upstream target.' }),
    upstream_keepalive_idle_timeout: Type.Integer({ minimum: 0, default: 60000, description: 'Idle upstream connection lifetime (ms).' }),
    response_buffer_limit: Type.Integer({
      minimum: 0,
      default: 10485760,
      description: 'Largest upstream response body buffered for plugins that inspect whole bodies (body phase), in bytes; larger bodies are streamed and those plugins are told so.',
    }),
    shutdown_timeout: Type.Integer({ minimum: 0, default: 10000, description: 'On SIGTERM, time in-flight requests get to finish (ms).' }),
    access_log: Type.String({ default: 'stdout', description: 'Where access log lines go: stdout, off, or a file path.' }),
    log_level: Enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace'], {
      default: 'info',
      description: 'Level of the gateway log (stderr).',
    }),
    watch: Type.Boolean({ default: true, description: 'Reload when the config file changes (SIGHUP always reloads).' }),
  },
  'Palisade: listener, limits and process settings (Kong keeps these in kong.conf).', true,
);

export const AdminSection = Obj(
  {
    token: Type.Optional(Type.String({ minLength: 16, description: 'Bearer token for the admin API (or PALISADE_ADMIN_TOKEN). /status needs none.' })),
  },
  'Palisade: admin API settings.', true,
);

export const AUDIT_OUTCOMES = ['authenticated', 'anonymous', 'deny', 'detect', 'allow'] as const;

export const AuditSection = Obj(
  {
    enabled: Type.Boolean({ default: false, description: 'Write the tamper-evident audit trail (docs/audit.md): security decisions, config changes and admin API requests.' }),
    path: Type.String({ minLength: 1, default: 'palisade-audit.log', description: 'The audit log file (JSON lines); rotated files are PATH.000001, PATH.000002, …' }),
    fsync: Enum(['always', 'interval', 'never'], {
      default: 'interval',
      description: 'always: fsync after every batch of records, before the next is written; interval: fsync every fsync_interval ms (a crash loses at most that much); never: leave it to the OS.',
    }),
    fsync_interval: Type.Integer({ minimum: 1, default: 1000, description: 'Milliseconds between fsyncs with fsync: interval.' }),
    checkpoint_records: Type.Integer({ minimum: 1, default: 1000, description: 'Write a signed checkpoint after this many records …' }),
    checkpoint_interval: Type.Integer({ minimum: 1, default: 60, description: '… or this many seconds after the first record not yet covered by one, whichever comes first.' }),
    signing_key: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'Ed25519 private key that signs the checkpoints (required when enabled): PEM text, a file path, or {vault://env/NAME} (the PEM in environment variable NAME). palisade audit keygen makes one.',
      }),
    ),
    rotate_size: Type.Integer({ minimum: 0, default: 104857600, description: 'Start a new file when the current one would grow past this many bytes (0: never). The chain continues across files.' }),
    queue_max_bytes: Type.Integer({
      minimum: 1024,
      default: 67108864,
      description: 'Bytes of records held in memory while the log cannot be written (disk full, failing fsync). Past it records are dropped and counted; once writing works again one chained gap record says how many and when (palisade audit verify reports it).',
    }),
    decisions: Type.Array(Enum([...AUDIT_OUTCOMES]), {
      default: [...AUDIT_OUTCOMES],
      description: 'Which security decisions of requests are recorded (default: all): authenticated, anonymous, deny, detect, allow.',
    }),
  },
  'Palisade: the tamper-evident audit trail (hash-chained JSON lines, signed checkpoints). Read at start: changing it needs a restart.', true,
);

export const ConfigSchema = Obj(
  {
    _format_version: Enum(['3.0', '2.1', '1.1'], { description: "decK format version; '3.0' recommended." }),
    _transform: Type.Optional(Type.Boolean({ description: 'decK: accepted and ignored (credentials are hashed at load).' })),
    _info: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'decK metadata: accepted and ignored.' })),
    _workspace: Type.Optional(Type.String({ description: 'decK workspace: accepted and ignored.' })),
    server: ServerSection,
    admin: AdminSection,
    audit: AuditSection,
    services: Type.Array(ServiceEntity, { default: [], description: 'Services with their routes and plugins.' }),
    routes: Type.Array(RouteEntity, { default: [], description: 'Routes declared at top level (each names its service).' }),
    upstreams: Type.Array(UpstreamEntity, { default: [], description: 'Load-balanced upstreams.' }),
    consumers: Type.Array(ConsumerEntity, { default: [], description: 'Consumers.' }),
    consumer_groups: Type.Array(ConsumerGroupEntity, { default: [], description: 'Consumer groups.' }),
    plugins: Type.Array(PluginEntity, { default: [], description: 'Global plugins (or scoped by their references).' }),
    certificates: Type.Array(CertificateEntity, { default: [], description: 'TLS certificates for the https listener.' }),
  },
  'Palisade declarative configuration: a superset of Kong decK format 3.0.',
);

export type PalisadeConfig = Static<typeof ConfigSchema>;
export type ServiceConfig = Static<typeof ServiceEntity>;
export type RouteConfig = Static<typeof RouteEntity>;
export type PluginConfig = Static<typeof PluginEntity>;
export type UpstreamConfig = Static<typeof UpstreamEntity>;
export type ConsumerConfig = Static<typeof ConsumerEntity> & Record<string, unknown>;
export type CertificateConfig = Static<typeof CertificateEntity>;
export type ServerConfig = Static<typeof ServerSection>;
export type AuditConfig = Static<typeof AuditSection>;

/**
 * The plugins Palisade ships. Adding a plugin = a folder under src/plugins/ and one
 * line here. Priorities are unique (checked at load) so the order inside a phase
 * is total and documented.
 */
import type { PluginDefinition } from '../pdk/index.ts';
import acl from './acl/index.ts';
import basicAuth from './basic-auth/index.ts';
import botDetection from './bot-detection/index.ts';
import correlationId from './correlation-id/index.ts';
import cors from './cors/index.ts';
import fileLog from './file-log/index.ts';
import hmacAuth from './hmac-auth/index.ts';
import httpLog from './http-log/index.ts';
import injectionProtection from './injection-protection/index.ts';
import ipRestriction from './ip-restriction/index.ts';
import jsonThreatProtection from './json-threat-protection/index.ts';
import jwt from './jwt/index.ts';
import keyAuth from './key-auth/index.ts';
import ldapAuth from './ldap-auth/index.ts';
import mtlsAuth from './mtls-auth/index.ts';
import oasValidation from './oas-validation/index.ts';
import opentelemetry from './opentelemetry/index.ts';
import prometheus from './prometheus/index.ts';
import rateLimiting from './rate-limiting/index.ts';
import requestSizeLimiting from './request-size-limiting/index.ts';
import requestTermination from './request-termination/index.ts';
import responseRateLimiting from './response-ratelimiting/index.ts';
import responseSizeLimiting from './response-size-limiting/index.ts';
import statsd from './statsd/index.ts';
import syslog from './syslog/index.ts';
import tcpLog from './tcp-log/index.ts';
import xmlThreatProtection from './xml-threat-protection/index.ts';

const definitions: PluginDefinition[] = [
  acl,
  basicAuth,
  botDetection,
  correlationId,
  cors,
  fileLog,
  hmacAuth,
  httpLog,
  injectionProtection,
  ipRestriction,
  jsonThreatProtection,
  jwt,
  keyAuth,
  ldapAuth,
  mtlsAuth,
  oasValidation,
  opentelemetry,
  prometheus,
  rateLimiting,
  requestSizeLimiting,
  requestTermination,
  responseRateLimiting,
  responseSizeLimiting,
  statsd,
  syslog,
  tcpLog,
  xmlThreatProtection,
];

const byName = new Map<string, PluginDefinition>();
const byPriority = new Map<number, string>();
for (const def of definitions) {
  if (byName.has(def.name)) throw new Error(`plugin '${def.name}' registered twice`);
  const clash = byPriority.get(def.priority);
  if (clash) throw new Error(`plugins '${clash}' and '${def.name}' share priority ${def.priority}`);
  byName.set(def.name, def);
  byPriority.set(def.priority, def.name);
}

export function getPlugin(name: string): PluginDefinition | undefined {
  return byName.get(name);
}

export function pluginNames(): string[] {
  return [...byName.keys()].sort();
}

export function allPlugins(): readonly PluginDefinition[] {
  return definitions;
}

/** Kong's bundled plugins (3.x), for a clear "not implemented" error. */
export const KONG_ONLY_PLUGINS = new Set([
  'acl', 'acme', 'ai-proxy', 'ai-prompt-decorator', 'ai-prompt-guard', 'ai-prompt-template', 'ai-request-transformer',
  'ai-response-transformer', 'aws-lambda', 'azure-functions', 'basic-auth', 'bot-detection', 'datadog', 'file-log',
  'grpc-gateway', 'grpc-web', 'http-log', 'ip-restriction', 'jwt', 'key-auth', 'ldap-auth', 'loggly',
  'oauth2', 'opentelemetry', 'post-function', 'pre-function', 'prometheus', 'proxy-cache',
  'redirect', 'request-transformer', 'response-ratelimiting', 'response-transformer', 'session', 'standard-webhooks',
  'statsd', 'syslog', 'tcp-log', 'udp-log', 'zipkin', 'mtls-auth', 'openid-connect', 'rate-limiting-advanced',
  'request-validator', 'oas-validation', 'jwt-signer', 'opa', 'canary', 'proxy-cache-advanced', 'json-threat-protection',
  'xml-threat-protection', 'injection-protection', 'response-size-limiting',
]);

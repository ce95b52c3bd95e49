/**
 * RFC 5424 message formatting: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID
 * STRUCTURED-DATA MSG, with PRI = facility * 8 + severity.
 */
import { hostname } from 'node:os';
import { FACILITIES, SEVERITIES } from './schema.ts';

export type Severity = (typeof SEVERITIES)[number];
export type Facility = (typeof FACILITIES)[number];

/** Severity numbers (RFC 5424 §6.2.1): 0 emerg … 7 debug. */
export const SEVERITY_CODE: Record<Severity, number> = { emerg: 0, alert: 1, crit: 2, err: 3, warning: 4, notice: 5, info: 6, debug: 7 };

/** Facility numbers (RFC 5424 §6.2.1). */
export const FACILITY_CODE: Record<Facility, number> = Object.fromEntries(FACILITIES.map((f, i) => [f, i < 12 ? i : i + 4])) as Record<Facility, number>;

/** HOSTNAME: printable US-ASCII, at most 255 characters, or '-'. */
const HOST = ((h) => (/^[\x21-\x7e]{1,255}$/.test(h) ? h : '-'))(hostname());
const APP = 'palisade';
const MSGID = 'log';

export function formatMessage(facility: Facility, severity: Severity, time: Date, message: string): string {
  return `<${FACILITY_CODE[facility] * 8 + SEVERITY_CODE[severity]}>1 ${time.toISOString()} ${HOST} ${APP} ${process.pid} ${MSGID} - ${message}`;
}

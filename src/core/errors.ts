/**
 * The one catalog of errors the gateway itself answers with: stable codes for
 * logs and metrics, Kong's status and message for clients.
 */
export interface GatewayError {
  readonly code: string;
  readonly status: number;
  /** Kong's text for the same situation, so Kong clients keep working. */
  readonly message: string;
}

function e(code: string, status: number, message: string): GatewayError {
  return Object.freeze({ code, status, message });
}

export const ERR = Object.freeze({
  NO_ROUTE: e('PALISADE_ERR_NO_ROUTE', 404, 'no Route matched with those values'),
  HTTPS_REQUIRED: e('PALISADE_ERR_HTTPS_REQUIRED', 426, 'Please use HTTPS protocol'),
  UPSTREAM_CONNECT: e('PALISADE_ERR_UPSTREAM_CONNECT', 502, 'An invalid response was received from the upstream server'),
  UPSTREAM_TIMEOUT: e('PALISADE_ERR_UPSTREAM_TIMEOUT', 504, 'The upstream server is timed out'),
  NO_HEALTHY_TARGET: e('PALISADE_ERR_NO_HEALTHY_TARGET', 503, 'failure to get a peer from the ring-balancer'),
  BODY_TOO_LARGE: e('PALISADE_ERR_BODY_TOO_LARGE', 413, 'Request size limit exceeded'),
  RESPONSE_TOO_LARGE: e('PALISADE_ERR_RESPONSE_TOO_LARGE', 502, 'Response size limit exceeded'),
  DUPLICATE_HEADER: e('PALISADE_ERR_DUPLICATE_HEADER', 400, 'Bad request: a Content-Type or Authorization header is repeated'),
  BAD_REQUEST: e('PALISADE_ERR_BAD_REQUEST', 400, 'Bad request'),
  HEADERS_TOO_LARGE: e('PALISADE_ERR_HEADERS_TOO_LARGE', 431, 'Request header or cookie too large'),
  REQUEST_TIMEOUT: e('PALISADE_ERR_REQUEST_TIMEOUT', 408, 'Request timeout'),
  /** RFC 9110 §15.5.20: the connection's certificate is not the one for the requested host. */
  MISDIRECTED: e('PALISADE_ERR_MISDIRECTED_REQUEST', 421, 'This host requires a client certificate; connect with its server name (SNI)'),
  /** RFC 9112 §6.1: a transfer coding other than chunked (nginx: 501 too). */
  NOT_IMPLEMENTED: e('PALISADE_ERR_NOT_IMPLEMENTED', 501, 'Not Implemented'),
  SHUTTING_DOWN: e('PALISADE_ERR_SHUTTING_DOWN', 503, 'The gateway is shutting down'),
  INTERNAL: e('PALISADE_ERR_INTERNAL', 500, 'An unexpected error occurred'),
});

/** Thrown by the body limiter inside the upstream request stream. */
export class BodyLimitError extends Error {
  constructor() {
    super('request body above the configured limit');
    this.name = 'BodyLimitError';
  }
}

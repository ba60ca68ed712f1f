/**
 * The one error type services throw. `code` is a docs/protocol.md error code; the WS filter turns it into
 * an `error` frame and the HTTP filter into a status, so no service knows about either transport.
 */
export type ErrorCode =
  | 'invalid_json'
  | 'invalid_message'
  | 'unknown_type'
  | 'not_found'
  | 'rate_limited'
  | 'model_not_configured'
  | 'upstream_auth'
  | 'upstream_quota'
  | 'upstream_rate_limited'
  | 'upstream_unavailable'
  | 'upstream_timeout'
  | 'upstream_interrupted'
  | 'upstream_bad_request'
  | 'upstream_bad_response'
  | 'limit_exceeded'
  | 'github_error'
  | 'shutting_down'
  | 'unauthorized'
  | 'forbidden'
  | 'conflict'
  | 'unsupported_media'
  | 'payload_too_large'
  | 'internal';

export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra fields for the error frame (chat_id, message_id, run_id, retry_after_ms). */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'AppError';
  }
}

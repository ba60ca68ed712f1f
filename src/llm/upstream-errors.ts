import type * as http from 'node:http';
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import { AppError, type ErrorCode } from '../common/app-error';
import { completionsUrl, errorObject, normalizeErrorBody, type OptionalParam, unsupportedParams } from './openai-compat';

/**
 * How a failed attempt at the model API reads: which docs/protocol.md code, whether a new attempt may
 * help, and the server's own words (scrubbed of keys). HTTP error answers and error objects sent
 * inside a 2xx stream are classified alike, by their status or by their own `code`/`type`/`status`.
 */

/** Statuses worth another try (before the first piece only). */
const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);

/** Why one attempt failed: the error to surface, and whether a new attempt may help. */
export class AttemptFailure {
  constructor(
    readonly error: AppError,
    readonly retryable: boolean,
    /** From `retry-after` / `retry-after-ms`, when upstream said. */
    readonly retryAfterMs?: number,
    /** For the failure log line (no secrets). */
    readonly detail?: string,
    /** A 400/422 refusing optional fields of ours: retry once without them. */
    readonly drop?: { params: OptionalParam[]; named: boolean },
  ) {}
}

/** A 2xx answer that is not an answer (an HTML page, an empty stream, an oversized event, …). */
export class BadResponse extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BadResponse';
  }
}

/** What `classify` needs to know of the attempt. */
export interface AttemptContext {
  /** A piece already went out: any failure is a broken answer, never retried. */
  emittedPiece: boolean;
  body: Record<string, unknown>;
  /** Optional fields already left out in this run. */
  dropped: ReadonlySet<string>;
}

export class UpstreamErrors {
  constructor(
    private readonly apiKey: string | undefined,
    private readonly baseUrl: string,
  ) {}

  /** Maps an error of one attempt (SDK error class, in-stream error, bad answer, network error). */
  classify(err: unknown, ctx: AttemptContext): AttemptFailure {
    const detail = this.describe(err);
    if (ctx.emittedPiece) {
      return new AttemptFailure(new AppError('upstream_interrupted', "The model's stream broke off mid-answer."), false, undefined, detail);
    }
    if (err instanceof BadResponse) return this.fail('upstream_bad_response', this.scrub(err.message), detail);
    if (err instanceof APIUserAbortError) return this.unexpected(err);
    if (err instanceof APIConnectionTimeoutError) {
      return this.fail('upstream_timeout', 'The model API did not answer in time.', detail);
    }
    if (err instanceof APIConnectionError) return this.unavailable('Could not connect to the model API.', detail);
    if (err instanceof APIError) return this.classifyStatus(err, ctx, detail);
    if (isNetworkError(err)) return this.unavailable('The connection to the model API broke.', detail);
    return this.unexpected(err);
  }

  private classifyStatus(err: APIError, ctx: AttemptContext, detail: string): AttemptFailure {
    const status = err.status;
    const text = this.upstreamText(err);
    const suffix = text ? `: ${text}` : '.';
    if (status === undefined) {
      // An error object inside a 2xx answer that says nothing of its kind: worth another try.
      return new AttemptFailure(new AppError('upstream_bad_response', `The model API sent an error instead of an answer${suffix}`), true, undefined, detail);
    }
    const retryAfterMs = retryAfter(err.headers);
    if (status === 401 || status === 403) {
      return this.fail('upstream_auth', `The model API refused the API key (${status})${suffix}`, detail);
    }
    if (status === 402) return this.fail('upstream_quota', `The model API account is out of balance (402)${suffix}`, detail);
    if (status === 429) {
      const error = new AppError('upstream_rate_limited', `The model API kept answering 429 (rate limited)${suffix}`);
      return new AttemptFailure(error, true, retryAfterMs, detail);
    }
    if (status >= 500) {
      const error = new AppError('upstream_unavailable', `The model API is unavailable (${status})${suffix}`);
      return new AttemptFailure(error, RETRY_STATUSES.has(status), retryAfterMs, detail);
    }
    if (status === 404) {
      const path = this.completionsPath();
      const hint = /\/v\d+$/.test(path.replace(/\/chat\/completions$/, '')) ? '.' : '; base URLs usually end in /v1.';
      return this.fail('upstream_bad_request', `The model API has no ${path} (404)${text ? `: ${text}` : ''}${hint}`, detail);
    }
    if (status >= 400) {
      const failure = this.fail('upstream_bad_request', `The model API rejected the request (${status})${suffix}`, detail);
      const drop = unsupportedParams(status, err.error, ctx.body, ctx.dropped);
      return drop ? new AttemptFailure(failure.error, false, undefined, detail, drop) : failure;
    }
    return this.unexpected(err);
  }

  timeout(timeoutMs: number): AttemptFailure {
    const secs = timeoutMs >= 1000 ? `${Math.round(timeoutMs / 1000)} s` : `${timeoutMs} ms`;
    return this.fail('upstream_timeout', `No progress from the model API within ${secs}.`, 'no progress');
  }

  unexpected(err: unknown): AttemptFailure {
    return this.fail('internal', 'Unexpected error while calling the model API.', this.describe(err));
  }

  /** One line for the log: status, class and the server's words, or the error chain (no secrets). */
  describe(err: unknown): string {
    if (err instanceof APIError) {
      const status = err.status !== undefined ? `${err.status} ` : '';
      const text = this.upstreamText(err);
      return `${status}${err.constructor.name}${text ? ` ${text}` : ''}`.trim();
    }
    return this.scrub(describeError(err)).slice(0, 300);
  }

  scrub(text: string): string {
    let out = text;
    const key = this.apiKey?.trim();
    // A placeholder key (`none`, `EMPTY`, `k`) is no secret, and masking it would mangle the words.
    if (key && key.length >= 8) out = out.split(key).join('***');
    return out.replace(/\bsk-[A-Za-z0-9_*-]{4,}/g, 'sk-***');
  }

  private completionsPath(): string {
    try {
      return completionsUrl(this.baseUrl).pathname;
    } catch {
      return '/chat/completions';
    }
  }

  private fail(code: ErrorCode, message: string, detail?: string): AttemptFailure {
    return new AttemptFailure(new AppError(code, message), false, undefined, detail);
  }

  private unavailable(message: string, detail?: string): AttemptFailure {
    return new AttemptFailure(new AppError('upstream_unavailable', message), true, undefined, detail);
  }

  /** Upstream's own error text, without anything that looks like a key. */
  private upstreamText(err: APIError): string {
    const body = err.error as { message?: unknown } | undefined;
    const raw = typeof body?.message === 'string' ? body.message : '';
    return this.scrub(raw.replace(/\s+/g, ' ').trim()).slice(0, 200);
  }
}

/** An HTTP error answer as the SDK would have made it (after `normalizeErrorBody`). */
export function httpError(status: number, text: string, raw: http.IncomingHttpHeaders): APIError {
  const normalized = normalizeErrorBody(text);
  let json: object | undefined;
  try {
    const parsed: unknown = JSON.parse(normalized);
    json = parsed && typeof parsed === 'object' ? parsed : undefined;
  } catch {
    json = undefined;
  }
  const headers = new Headers();
  for (const [name, value] of Object.entries(raw)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  return APIError.generate(status, json, json ? undefined : normalized, headers);
}

/**
 * An error object sent inside a 2xx answer (`data: {"error":…}`, llama.cpp's `error:` field,
 * `event: error`, old vLLM's `{"object":"error",…}`), as an APIError with the status it names, so it
 * is classified like the HTTP error it stands for. Without a recognisable status, `status` is undefined.
 */
export function inStreamError(payload: unknown): APIError {
  const obj = errorObject(payload);
  const status = errorStatus(obj);
  if (status === undefined) return new APIError(undefined, obj, undefined, undefined);
  return APIError.generate(status, { error: obj }, undefined, new Headers());
}

/** The HTTP status an error object names: a numeric `status`/`code`, or its `type`/`code` words. */
export function errorStatus(e: Record<string, unknown>): number | undefined {
  for (const v of [e.status, e.status_code, e.statusCode, e.code]) {
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d{3}$/.test(v.trim()) ? Number(v) : NaN;
    if (n >= 400 && n < 600) return n;
  }
  const words = `${str(e.type)} ${str(e.code)} ${str(e.status)}`.toLowerCase();
  if (/auth|api[_ ]?key|unauthori[sz]ed/.test(words)) return 401;
  if (/permission|forbidden/.test(words)) return 403;
  if (/quota|balance|billing|payment|credit/.test(words)) return 402;
  if (/rate[_ ]?limit|too[_ ]many|exhausted/.test(words)) return 429;
  if (/not[_ ]?found|model[_ ]not/.test(words)) return 404;
  if (/overload|unavailable/.test(words)) return 503;
  if (/invalid|bad[_ ]request|validation|context[_ ]length|exceed/.test(words)) return 400;
  if (/server|internal|api[_ ]error/.test(words)) return 500;
  return undefined;
}

/** A socket failure: node:http's (ECONNRESET "socket hang up" / "aborted", ECONNREFUSED, a TLS or
 * stream error mid-body) or undici's (connection reset, "terminated", "other side closed", ...). */
export function isNetworkError(err: unknown): boolean {
  const seen = new Set<unknown>();
  let e: any = err;
  while (e && typeof e === 'object' && !seen.has(e)) {
    seen.add(e);
    const code = typeof e.code === 'string' ? e.code : '';
    if (/^(UND_ERR_|ECONN|EPIPE|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ERR_STREAM_PREMATURE_CLOSE|ERR_SSL_|ERR_TLS_|Z_)/.test(code)) {
      return true;
    }
    if (e instanceof TypeError && /terminated|fetch failed|other side closed/i.test(String(e.message))) return true;
    if (/^(socket hang up|aborted)$/.test(String(e.message))) return true;
    e = e.cause;
  }
  return false;
}

function retryAfter(headers: Headers | undefined): number | undefined {
  if (!headers) return undefined;
  const ms = Number.parseFloat(headers.get('retry-after-ms') ?? '');
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const value = headers.get('retry-after');
  if (!value) return undefined;
  const secs = Number.parseFloat(value);
  if (Number.isFinite(secs) && secs >= 0) return secs * 1000;
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    return `${named(err)}${cause instanceof Error ? ` (cause: ${named(cause)})` : ''}`;
  }
  return String(err);
}

/** `Name: message`, with node's error code when it has one (`Error: socket hang up [ECONNRESET]`). */
function named(err: Error): string {
  const code = (err as { code?: unknown }).code;
  return `${err.name}: ${err.message}${typeof code === 'string' && !err.message.includes(code) ? ` [${code}]` : ''}`;
}

function str(v: unknown): string {
  return typeof v === 'string' || typeof v === 'number' ? String(v) : '';
}

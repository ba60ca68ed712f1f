import { createParser, type EventSourceParser } from 'eventsource-parser';
import * as http from 'node:http';
import * as https from 'node:https';
import type { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { APIConnectionError } from 'openai';
import { VERSION as SDK_VERSION } from 'openai/version';
import { deferred } from '../common/deferred';
import { completionsUrl, htmlTitle, isHtmlPage } from './openai-compat';
import { BadResponse, httpError, inStreamError } from './upstream-errors';

// --- Streaming over node:http ---------------------------------------------------------------------
// The SDK's fetch / web-streams / async-iterator stack cost ~30% of the server's CPU per piece. This
// is the same request (POST /chat/completions, the same JSON body) over node:http with a keep-alive
// agent and eventsource-parser: one JSON.parse per event, events handed over synchronously. HTTP
// errors are the SDK's own classes, so the classification reads them as before; a 2xx answer is
// checked for what it is (an event stream, a JSON error or completion, or something else).

// Idle connections kept per model server: Node's default (256) closes every connection past it when
// a burst of turns ends, so the next burst opens them again (a TCP, and for https a TLS, handshake
// per turn). A burst of 500 at once then reuses all of its connections (CPU per 1,000 pieces -5%).
// The server closes them when it likes (its idle timeout); the agent forgets a closed one.
const KEEP_IDLE = 4096;

const AGENTS = {
  http: new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: KEEP_IDLE }),
  https: new https.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: KEEP_IDLE }),
};

/** Sockets to model servers: in use by a request, and kept alive idle (for specs and diagnostics). */
export function upstreamSockets(): { active: number; idle: number } {
  const count = (pools: NodeJS.ReadOnlyDict<unknown[]>[]) =>
    pools.reduce((n, pool) => n + Object.values(pool).reduce((m, list) => m + (list?.length ?? 0), 0), 0);
  return {
    active: count([AGENTS.http.sockets, AGENTS.https.sockets]),
    idle: count([AGENTS.http.freeSockets, AGENTS.https.freeSockets]),
  };
}

/** How a reused kept-alive socket fails when the server had closed it (the request never arrived). */
const STALE_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE']);
/** How much of an error answer is read into memory. */
const MAX_ERROR_BODY = 64 * 1024;
/** The largest single event, and the largest whole (non-streamed) answer, in characters. */
export const MAX_EVENT_CHARS = 8 * 1024 * 1024;
/** After `[DONE]`, how long the rest of the body may take before the socket is dropped. */
const AFTER_DONE_MS = 5_000;

export interface SseTarget {
  secure: boolean;
  options: http.RequestOptions;
  headers: Record<string, string>;
}

/** Where and how streamed completions are posted. */
export function sseTarget(baseUrl: string, apiKey: string): SseTarget {
  const url = completionsUrl(baseUrl);
  const secure = url.protocol === 'https:';
  return {
    secure,
    options: {
      protocol: url.protocol,
      hostname: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
      port: url.port || undefined,
      path: `${url.pathname}${url.search}`,
      method: 'POST',
      agent: secure ? AGENTS.https : AGENTS.http,
    },
    headers: {
      'content-type': 'application/json',
      accept: 'text/event-stream',
      // Compressed events wait in the compressor's buffer; ask for none (and decompress anyway).
      'accept-encoding': 'identity',
      authorization: `Bearer ${apiKey.trim()}`,
      'user-agent': `OpenAI/JS ${SDK_VERSION}`,
    },
  };
}

export interface SseHandlers {
  /** A 2xx answer that is an answer arrived (an event stream, or a whole completion). */
  accepted: () => void;
  /** One chunk: a parsed `data:` event (not `[DONE]`, not an error), or a whole non-streamed
   * completion in a chunk's shape (`message` as `delta`). */
  event: (data: unknown) => void;
}

/** What the answer held, for the sentence when it held nothing usable. */
export interface SseStats {
  /** Chunks handed to `event`. */
  events: number;
  /** Data events that were not JSON objects (`data: ping`, a cut line), skipped. */
  skipped: number;
}

export interface SseRequest {
  /** Resolves at `[DONE]`, at the end of the body, or quietly after `cancel()`; rejects with an
   * `APIError` (HTTP status, an error sent in the answer), an `APIConnectionError` (no answer), a
   * `BadResponse` (a 2xx that is not an answer), or a network error met mid-stream. */
  done: Promise<void>;
  stats: SseStats;
  /** Destroys the request (the upstream sees the disconnect); `done` resolves. */
  cancel: () => void;
}

export function postSse(target: SseTarget, payload: string, timeoutMs: number, handlers: SseHandlers): SseRequest {
  let settled = false;
  const done = deferred();
  const stats: SseStats = { events: 0, skipped: 0 };
  const settle = (err?: unknown) => {
    if (settled) return;
    settled = true;
    if (err === undefined) done.resolve();
    else done.reject(err);
  };
  let responded = false;
  let req!: http.ClientRequest;
  const fail = (err: unknown) => {
    if (settled) return;
    // Like the SDK: no answer at all is a connection error; a break after the answer began is not.
    settle(responded ? err : new APIConnectionError({ message: 'Connection error.', cause: err as Error }));
    req.destroy();
  };
  const send = (mayRetryStale: boolean) => {
    const attempt = (target.secure ? https : http).request({
      ...target.options,
      headers: { ...target.headers, 'content-length': Buffer.byteLength(payload) },
    });
    req = attempt;
    attempt.on('error', (err: Error & { code?: string }) => {
      // A kept-alive socket the server closed as we wrote to it: once more on a new connection,
      // at once (the request never reached the server; a backoff would only add latency).
      if (mayRetryStale && !responded && !settled && attempt.reusedSocket && STALE_SOCKET_CODES.has(err.code ?? '')) {
        send(false);
        return;
      }
      fail(err);
    });
    attempt.on('response', onResponse);
    attempt.end(payload);
  };

  /** One parsed event: a chunk, `[DONE]`, an error object, or something to skip. */
  const dispatch = (data: string, type: string | undefined, res: http.IncomingMessage) => {
    if (settled) return;
    if (data.startsWith('[DONE]')) {
      settle();
      // Let the rest of the body (usually just the chunked terminator) come, so the socket is
      // reused; a server that never ends it loses the socket after a while.
      if (!res.complete) {
        setTimeout(
          () => {
            if (!res.complete) req.destroy();
          },
          Math.min(timeoutMs, AFTER_DONE_MS),
        ).unref();
      }
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      if (type === 'error') fail(inStreamError(data));
      else stats.skipped++;
      return;
    }
    if (json && typeof json === 'object') deliver(json as Record<string, unknown>, type);
    else if (type === 'error') fail(inStreamError(json));
    else stats.skipped++;
  };

  /** One JSON object of the answer: an error (classified by its own words), or a chunk. */
  const deliver = (json: Record<string, unknown>, type?: string) => {
    if (type === 'error' || json.error || json.object === 'error') {
      fail(inStreamError(json));
      return;
    }
    stats.events++;
    try {
      handlers.event(json);
    } catch (err) {
      fail(err);
    }
  };

  /** An event-stream parser over this answer: `feed` its text, `end` at its end. */
  const events = (res: http.IncomingMessage) => {
    let first = true;
    const parser: EventSourceParser = createParser({
      maxBufferSize: MAX_EVENT_CHARS,
      onEvent: (message) => dispatch(message.data, message.event, res),
      onError: (error) => {
        if (error.type === 'max-buffer-size-exceeded') {
          fail(new BadResponse(`The model API sent an event of more than ${MAX_EVENT_CHARS / 1024 / 1024} MB.`));
        } else if (error.type === 'unknown-field' && error.field === 'error') {
          // llama.cpp's `error: {…}` field.
          fail(inStreamError(parseOrText(error.value ?? '')));
        }
      },
    });
    return {
      feed: (text: string) => {
        if (settled) return;
        if (first) {
          first = false;
          if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
        }
        parser.feed(text);
      },
      end: () => {
        // A last event without its blank line (or even its newline) is still an event.
        if (!settled) parser.feed('\n\n');
        settle();
      },
    };
  };

  const streamEvents = (res: http.IncomingMessage, body: Readable) => {
    const parser = events(res);
    body.on('data', parser.feed);
    body.on('end', parser.end);
  };

  /** Anything but an event stream: read whole (capped), then an error, a completion, or neither. */
  const readWhole = (res: http.IncomingMessage, body: Readable, contentType: string) => {
    let text = '';
    body.on('data', (s: string) => {
      if (settled) return;
      text += s;
      if (text.length > MAX_EVENT_CHARS) {
        fail(new BadResponse(`The model API answered with a body of more than ${MAX_EVENT_CHARS / 1024 / 1024} MB that is not an event stream.`));
      }
    });
    body.on('end', () => {
      if (settled) return;
      const status = res.statusCode ?? 200;
      const trimmed = text.replace(/^\uFEFF/, '').trim();
      if (!trimmed) return fail(new BadResponse(`The model API answered ${status} with an empty body.`));
      let json: unknown;
      try {
        json = JSON.parse(trimmed);
      } catch {
        if (/^(data|event|id|retry)?:/.test(trimmed)) {
          // An event stream under another content type: read it as one.
          handlers.accepted();
          const parser = events(res);
          parser.feed(text);
          parser.end();
          return;
        }
        const what =
          /html/.test(contentType) || isHtmlPage(trimmed)
            ? `an HTML page${titled(htmlTitle(trimmed))}`
            : `${contentType || 'an untyped body'} (${JSON.stringify(trimmed.slice(0, 120))})`;
        return fail(new BadResponse(`The model API answered ${status} with ${what} instead of an event stream.`));
      }
      const o = (json && typeof json === 'object' ? json : {}) as Record<string, unknown>;
      if (o.error || o.object === 'error') return fail(inStreamError(json));
      const choices = Array.isArray(o.choices) ? (o.choices as Array<Record<string, unknown>>) : undefined;
      if (!choices) {
        return fail(new BadResponse(`The model API answered ${status} with JSON that is not a chat completion (${JSON.stringify(trimmed.slice(0, 120))}).`));
      }
      // A whole (non-streamed) completion: its message as one chunk.
      handlers.accepted();
      deliver({
        choices: choices.map((c) => ({ index: c?.index ?? 0, delta: c?.message ?? c?.delta ?? {}, finish_reason: c?.finish_reason ?? null })),
        usage: o.usage ?? null,
      });
      settle();
    });
  };

  const onResponse = (res: http.IncomingMessage) => {
    responded = true;
    const status = res.statusCode ?? 0;
    const body = decoded(res, fail);
    if (!body) return;
    body.setEncoding('utf8');
    res.on('error', fail);
    res.on('close', () => settled || res.complete || fail(prematureClose()));
    if (status < 200 || status >= 300) {
      let text = '';
      body.on('data', (s: string) => {
        // Enough for any error message (normalizeErrorBody keeps 1,000 characters of it).
        if (text.length < MAX_ERROR_BODY) text += s;
      });
      body.on('end', () => settle(httpError(status, text, res.headers)));
      return;
    }
    const contentType = String(res.headers['content-type'] ?? '').toLowerCase();
    if (contentType.includes('text/event-stream')) {
      handlers.accepted();
      streamEvents(res, body);
    } else {
      readWhole(res, body, contentType);
    }
  };

  send(true);
  return {
    done: done.promise,
    stats,
    cancel: () => {
      settle();
      req.destroy();
    },
  };
}

/** The body as sent: decompressed when the server compressed it anyway; undefined (after `fail`) when it cannot be read. */
function decoded(res: http.IncomingMessage, fail: (err: unknown) => void): Readable | undefined {
  const encoding = String(res.headers['content-encoding'] ?? '')
    .trim()
    .toLowerCase();
  if (!encoding || encoding === 'identity') return res;
  // Z_SYNC_FLUSH: a body cut short is read as far as it goes (the cut is then reported as such).
  const flush = { finishFlush: zlib.constants.Z_SYNC_FLUSH };
  let unzip: zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress;
  if (encoding === 'gzip' || encoding === 'x-gzip') unzip = zlib.createGunzip(flush);
  else if (encoding === 'deflate') unzip = zlib.createInflate(flush);
  else if (encoding === 'br') unzip = zlib.createBrotliDecompress({ finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH });
  else {
    fail(new BadResponse(`The model API compressed its answer as ${encoding.slice(0, 40)}, which cannot be read here.`));
    return undefined;
  }
  unzip.on('error', fail);
  return res.pipe(unzip);
}

function parseOrText(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

function titled(title: string | undefined): string {
  return title ? ` titled ${JSON.stringify(title)}` : '';
}

/** The response closed before its end: a reset, as Node reports it (made only then: an Error costs a stack). */
function prematureClose(): Error {
  return Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
}

import { Injectable, Logger } from '@nestjs/common';
import * as http from 'node:http';
import * as https from 'node:https';
import OpenAI, {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
} from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { VERSION as SDK_VERSION } from 'openai/version';
import { Observable, Subscriber } from 'rxjs';
import { AppError, ErrorCode } from '../common/app-error';
import { deferred } from '../common/deferred';
import { LlmEvent, LlmProvider, LlmRequest, LlmSettings, LlmUsage } from './llm.provider';
import {
  estimateTokens,
  normalizeErrorBody,
  OptionalParam,
  sendsThinkingField,
  unsupportedParams,
} from './openai-compat';
import { ThinkTagSplitter } from './think-tags';

/** Statuses worth another try (before the first piece only). */
const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);
/** Longest single backoff wait, and the most of a `retry-after` we honour. */
const MAX_BACKOFF_MS = 20_000;
const MODELS_TTL_MS = 60_000;
const MODELS_FAILURE_TTL_MS = 5_000;
const MODELS_TIMEOUT_MS = 10_000;

/** DeepSeek's (and vLLM's / Ollama's) additions to the OpenAI chunk delta. */
interface DeltaExtras {
  reasoning_content?: string | null;
  /** Ollama / OpenRouter spelling of the same thing. */
  reasoning?: string | null;
}

interface UsageExtras {
  completion_tokens_details?: { reasoning_tokens?: number | null } | null;
}

/** Why one attempt failed: the error to surface, and whether a new attempt may help. */
class AttemptFailure {
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

/** Per-subscription state shared by its attempts. */
interface Run {
  closed: boolean;
  /** Ends the attempt's HTTP request (the upstream sees the disconnect). */
  cancel?: () => void;
  /** A reasoning or content piece went out: from now on nothing is retried. */
  emittedPiece: boolean;
  sleepTimer?: NodeJS.Timeout;
  wake?: () => void;
  /** Fields left out after a generic "unknown field" answer: remembered once a retry is accepted. */
  tentative: OptionalParam[];
}

/** What one attempt has seen, for the think-tag split and the usage estimate. */
interface AttemptState {
  splitter: ThinkTagSplitter;
  reasoningChars: number;
  contentChars: number;
  sawUsage: boolean;
}

/**
 * The model port on DeepSeek's OpenAI-compatible API (works with any OpenAI-compatible server).
 * Answers stream over node:http with a small SSE parser (see `postSse`); the `openai` SDK, with its
 * own retries turned off, lists the models and supplies the error classes. This class retries,
 * before the first piece only, and watches for a stream that stops making progress.
 */
@Injectable()
export class DeepSeekProvider extends LlmProvider {
  private readonly logger = new Logger(DeepSeekProvider.name);
  private client?: OpenAI;
  private target?: SseTarget;
  private modelsCache?: { ids: string[]; expires: number };
  private modelsInFlight?: Promise<string[]>;
  /** Optional fields this server refused (a 400 naming them): never sent again. */
  private readonly unsupported = new Set<OptionalParam>();

  constructor(private readonly settings: LlmSettings) {
    super();
  }

  get defaultModel(): string {
    return this.settings.model;
  }

  isConfigured(): boolean {
    return !!this.settings.apiKey?.trim() && !!this.settings.baseUrl?.trim();
  }

  stream(request: LlmRequest): Observable<LlmEvent> {
    return new Observable<LlmEvent>((subscriber) => {
      if (!this.isConfigured()) {
        subscriber.error(
          new AppError('model_not_configured', 'No model API key is configured (set DEEPSEEK_API_KEY).'),
        );
        return;
      }
      const run: Run = { closed: false, emittedPiece: false, tentative: [] };
      this.runWithRetries(request, subscriber, run).catch((err: unknown) => {
        // Only reached for bugs in this class: every upstream failure is mapped inside.
        if (run.closed) return;
        this.logger.error(`Model stream failed unexpectedly: ${describe(err)}`);
        subscriber.error(new AppError('internal', 'Unexpected error while calling the model API.'));
      });
      return () => {
        run.closed = true;
        run.cancel?.();
        if (run.sleepTimer) clearTimeout(run.sleepTimer);
        run.wake?.();
      };
    });
  }

  async listModels(): Promise<string[]> {
    const cached = this.modelsCache;
    if (cached && cached.expires > Date.now()) return [...cached.ids];
    if (!this.isConfigured()) return [this.defaultModel];
    this.modelsInFlight ??= this.fetchModels().finally(() => (this.modelsInFlight = undefined));
    return [...(await this.modelsInFlight)];
  }

  // ---------------------------------------------------------------------------------------------

  private getClient(): OpenAI {
    this.client ??= new OpenAI({
      apiKey: this.settings.apiKey!.trim(),
      baseURL: this.settings.baseUrl.trim(),
      maxRetries: 0,
      // Error answers come in several shapes (vLLM, Ollama, FastAPI, plain text): give the SDK
      // OpenAI's, so the server's own words reach the error message and the unknown-field check.
      fetch: normalizingFetch,
      // Never pick these up from OPENAI_* environment variables meant for something else.
      organization: null,
      project: null,
      webhookSecret: null,
    });
    return this.client;
  }

  /** Where and how streamed completions are posted (parsed once; the settings do not change). */
  private getTarget(): SseTarget {
    if (!this.target) {
      const url = new URL(`${this.settings.baseUrl.trim().replace(/\/+$/, '')}/chat/completions`);
      const secure = url.protocol === 'https:';
      this.target = {
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
          authorization: `Bearer ${this.settings.apiKey!.trim()}`,
          'user-agent': `OpenAI/JS ${SDK_VERSION}`,
        },
      };
    }
    return this.target;
  }

  private async fetchModels(): Promise<string[]> {
    const fallback = [this.defaultModel];
    try {
      const page = await this.getClient().models.list({
        timeout: Math.max(1, Math.min(Math.round(this.settings.timeoutMs) || MODELS_TIMEOUT_MS, MODELS_TIMEOUT_MS)),
      });
      const ids = [this.defaultModel];
      for (const m of page.data ?? []) {
        if (typeof m?.id === 'string' && m.id && !ids.includes(m.id)) ids.push(m.id);
      }
      this.modelsCache = { ids, expires: Date.now() + MODELS_TTL_MS };
      return ids;
    } catch (err) {
      // 404/405: the server has no model list (llama.cpp builds, minimal servers); no use asking often.
      const absent = err instanceof APIError && (err.status === 404 || err.status === 405);
      if (absent) this.logger.log(`The model API has no model list (${err.status}); offering ${this.defaultModel} only`);
      else this.logger.warn(`Could not list models: ${this.describeUpstream(err)}`);
      this.modelsCache = { ids: fallback, expires: Date.now() + (absent ? MODELS_TTL_MS : MODELS_FAILURE_TTL_MS) };
      return fallback;
    }
  }

  /** The request body: only fields this server is known (or configured) to accept. */
  private buildBody(request: LlmRequest): Record<string, unknown> {
    const model = request.model || this.defaultModel;
    const body: Record<string, unknown> = {
      model,
      messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
      stream: true,
    };
    if (!this.unsupported.has('stream_options')) body.stream_options = { include_usage: true };
    if (request.temperature !== undefined && request.temperature !== null) body.temperature = request.temperature;
    if (request.maxTokens !== undefined && request.maxTokens !== null) body.max_tokens = request.maxTokens;
    if (request.responseFormat && !this.unsupported.has('response_format')) body.response_format = { type: request.responseFormat };
    if (
      request.thinking !== undefined &&
      request.thinking !== null &&
      !this.unsupported.has('thinking') &&
      sendsThinkingField(this.settings.thinkingField, this.settings.baseUrl, model)
    ) {
      body.thinking = { type: request.thinking ? 'enabled' : 'disabled' };
    }
    const effort = (request.reasoningEffort ?? this.settings.reasoningEffort)?.trim();
    if (effort && request.thinking !== false && !this.unsupported.has('reasoning_effort')) {
      body.reasoning_effort = effort;
    }
    return body;
  }

  private async runWithRetries(request: LlmRequest, subscriber: Subscriber<LlmEvent>, run: Run): Promise<void> {
    const body = this.buildBody(request);
    const maxRetries = Math.max(0, Math.floor(this.settings.maxRetries ?? 0));
    /** Optional fields already left out in this run: each is retried without once. */
    const dropped = new Set<string>();
    let attempts = 0;
    for (let retry = 0; ; ) {
      let failure: AttemptFailure;
      attempts++;
      try {
        await this.attempt(body, subscriber, run, dropped);
        return;
      } catch (err) {
        if (run.closed) return;
        failure = err instanceof AttemptFailure ? err : this.unexpected(err);
      }
      if (failure.drop && !run.emittedPiece) {
        for (const param of failure.drop.params) {
          delete body[param];
          dropped.add(param);
          if (failure.drop.named) this.unsupported.add(param);
          else run.tentative.push(param);
        }
        this.logger.warn(
          `The model API refused ${failure.drop.params.join(', ')}` +
            (failure.detail ? ` (${failure.detail})` : '') +
            (failure.drop.named ? '; retrying without, and not sending it again' : '; retrying without (remembered if that works)'),
        );
        continue;
      }
      if (failure.retryable && !run.emittedPiece && retry < maxRetries) {
        await this.backoff(run, retry, failure.retryAfterMs);
        retry++;
        if (run.closed) return;
        continue;
      }
      this.logger.warn(
        `Model request failed (${failure.error.code}) after ${attempts} attempt(s)` +
          (failure.detail ? `: ${failure.detail}` : ''),
      );
      subscriber.error(failure.error);
      return;
    }
  }

  /** One HTTP request. Resolves when the stream finished (events emitted); throws AttemptFailure. */
  private async attempt(
    body: Record<string, unknown>,
    subscriber: Subscriber<LlmEvent>,
    run: Run,
    dropped: ReadonlySet<string>,
  ) {
    const timeoutMs = Math.max(1, this.settings.timeoutMs);
    let timedOut = false;
    // One timer per attempt that re-checks the time of the last chunk when it fires (no timer per
    // chunk). Only data events are progress: keep-alive comments never move it (on purpose).
    let lastProgress = Date.now();
    let timer: NodeJS.Timeout | undefined;
    let finishReason: string | null = null;
    let sawFinish = false;
    const state: AttemptState = { splitter: new ThinkTagSplitter(), reasoningChars: 0, contentChars: 0, sawUsage: false };
    const finish = () => {
      this.emitSplit(state.splitter.flush(), subscriber, run, state);
      if (!state.sawUsage) subscriber.next({ type: 'usage', usage: this.estimateUsage(body, state) });
      subscriber.next({
        type: 'finish',
        reason: finishReason,
        complete: finishReason !== 'insufficient_system_resource',
      });
      subscriber.complete();
    };

    let upstream: SseRequest | undefined;
    try {
      upstream = postSse(this.getTarget(), JSON.stringify(body), timeoutMs, {
        // The server took the request: fields left out after a generic refusal were the trouble.
        accepted: () => {
          for (const param of run.tentative.splice(0)) this.unsupported.add(param);
        },
        event: (chunk) => {
          lastProgress = Date.now();
          if (run.closed) return;
          const reason = this.handleChunk(chunk as ChatCompletionChunk, subscriber, run, state);
          if (reason !== undefined) {
            finishReason = reason;
            sawFinish = true;
          }
        },
      });
      run.cancel = upstream.cancel;
      const check = () => {
        const idle = Date.now() - lastProgress;
        if (idle < timeoutMs) {
          timer = setTimeout(check, timeoutMs - idle);
          return;
        }
        timedOut = true;
        upstream?.cancel();
      };
      timer = setTimeout(check, timeoutMs);
      await upstream.done;
      // A cancelled request (unsubscribe or no progress) ends quietly, so check why it ended.
      if (run.closed) return;
      if (timedOut) throw this.timeoutFailure(timeoutMs);
      finish();
    } catch (err) {
      if (run.closed) return;
      if (err instanceof AttemptFailure && err.error.code !== 'upstream_timeout') throw err;
      if (sawFinish) {
        // The answer was complete; only the usage chunk or [DONE] went missing.
        this.logger.warn(`Model stream ended uncleanly after its finish_reason: ${this.describeUpstream(err)}`);
        finish();
        return;
      }
      // Whatever the think-tag split held back was received: keep it with the broken answer.
      if (run.emittedPiece) this.emitSplit(state.splitter.flush(), subscriber, run, state);
      if (timedOut || err instanceof AttemptFailure) throw this.timeoutFailure(timeoutMs);
      throw this.classify(err, run, body, dropped);
    } finally {
      if (timer) clearTimeout(timer);
      if (upstream && run.cancel === upstream.cancel) run.cancel = undefined;
    }
  }

  /** Emits the events of one chunk; returns its finish_reason when it carries one. */
  private handleChunk(
    chunk: ChatCompletionChunk,
    subscriber: Subscriber<LlmEvent>,
    run: Run,
    state: AttemptState,
  ): string | undefined {
    let reason: string | undefined;
    const choices = Array.isArray(chunk?.choices) ? chunk.choices : [];
    const choice = choices.find((c) => (c?.index ?? 0) === 0) ?? choices[0];
    if (choice) {
      const delta = (choice.delta ?? {}) as ChatCompletionChunk.Choice.Delta & DeltaExtras;
      // DeepSeek / vLLM: reasoning_content; Ollama / OpenRouter: reasoning (some send both).
      const reasoning = nonEmpty(delta.reasoning_content) ?? nonEmpty(delta.reasoning);
      if (reasoning) {
        run.emittedPiece = true;
        state.reasoningChars += reasoning.length;
        subscriber.next({ type: 'reasoning', text: reasoning });
      }
      const content = nonEmpty(delta.content);
      // Inline <think>…</think> at the start of the answer is reasoning too.
      if (content) this.emitSplit(state.splitter.push(content), subscriber, run, state);
      if (choice.finish_reason) reason = choice.finish_reason;
    }
    const usage = chunk?.usage as (ChatCompletionChunk['usage'] & UsageExtras) | null | undefined;
    if (usage && typeof usage === 'object') {
      state.sawUsage = true;
      const out: LlmUsage = {
        prompt_tokens: usage.prompt_tokens ?? 0,
        completion_tokens: usage.completion_tokens ?? 0,
        total_tokens: usage.total_tokens ?? (usage.prompt_tokens ?? 0) + (usage.completion_tokens ?? 0),
      };
      const rt = usage.completion_tokens_details?.reasoning_tokens;
      if (typeof rt === 'number') out.reasoning_tokens = rt;
      subscriber.next({ type: 'usage', usage: out });
    }
    return reason;
  }

  private emitSplit(
    pieces: { type: 'reasoning' | 'content'; text: string }[],
    subscriber: Subscriber<LlmEvent>,
    run: Run,
    state: AttemptState,
  ): void {
    for (const piece of pieces) {
      if (!piece.text) continue;
      run.emittedPiece = true;
      if (piece.type === 'reasoning') state.reasoningChars += piece.text.length;
      else state.contentChars += piece.text.length;
      subscriber.next({ type: piece.type, text: piece.text });
    }
  }

  /** For servers that send no usage chunk: about four characters a token, marked as estimated. */
  private estimateUsage(body: Record<string, unknown>, state: AttemptState): LlmUsage {
    const messages = Array.isArray(body.messages) ? (body.messages as { content?: unknown }[]) : [];
    const promptChars = messages.reduce((n, m) => n + (typeof m?.content === 'string' ? m.content.length : 0), 0);
    const prompt = estimateTokens(promptChars);
    const reasoning = estimateTokens(state.reasoningChars);
    const completion = reasoning + estimateTokens(state.contentChars);
    const usage: LlmUsage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
    if (reasoning > 0) usage.reasoning_tokens = reasoning;
    usage.estimated = true;
    return usage;
  }

  private timeoutFailure(timeoutMs: number): AttemptFailure {
    const secs = timeoutMs >= 1000 ? `${Math.round(timeoutMs / 1000)} s` : `${timeoutMs} ms`;
    return new AttemptFailure(
      new AppError('upstream_timeout', `No progress from the model API within ${secs}.`),
      false,
      undefined,
      'no progress',
    );
  }

  /** Maps an SDK / network error of one attempt. */
  private classify(err: unknown, run: Run, body: Record<string, unknown>, dropped: ReadonlySet<string>): AttemptFailure {
    const detail = this.describeUpstream(err);
    if (run.emittedPiece) {
      return new AttemptFailure(
        new AppError('upstream_interrupted', "The model's stream broke off mid-answer."),
        false,
        undefined,
        detail,
      );
    }
    if (err instanceof APIUserAbortError) return this.unexpected(err);
    if (err instanceof APIConnectionTimeoutError) {
      return new AttemptFailure(
        new AppError('upstream_timeout', 'The model API did not answer in time.'),
        false,
        undefined,
        detail,
      );
    }
    if (err instanceof APIConnectionError) return this.unavailable('Could not connect to the model API.', detail);
    if (err instanceof APIError) {
      const status = err.status;
      const text = this.upstreamText(err);
      const suffix = text ? `: ${text}` : '.';
      if (status === undefined) {
        // An error object sent inside the event stream, before any piece.
        return this.unavailable(`The model API reported an error${suffix}`, detail);
      }
      const retryAfterMs = retryAfter(err.headers);
      if (status === 401 || status === 403) {
        return this.fail('upstream_auth', `The model API refused the API key (${status})${suffix}`, detail);
      }
      if (status === 402) {
        return this.fail('upstream_quota', `The model API account is out of balance (402)${suffix}`, detail);
      }
      if (status === 429) {
        return new AttemptFailure(
          new AppError('upstream_rate_limited', `The model API kept answering 429 (rate limited)${suffix}`),
          true,
          retryAfterMs,
          detail,
        );
      }
      if (status >= 500) {
        return new AttemptFailure(
          new AppError('upstream_unavailable', `The model API is unavailable (${status})${suffix}`),
          RETRY_STATUSES.has(status),
          retryAfterMs,
          detail,
        );
      }
      if (status >= 400) {
        const failure = this.fail('upstream_bad_request', `The model API rejected the request (${status})${suffix}`, detail);
        const drop = unsupportedParams(status, err.error, body, dropped);
        return drop ? new AttemptFailure(failure.error, false, undefined, detail, drop) : failure;
      }
      return this.unexpected(err);
    }
    if (isNetworkError(err)) return this.unavailable('The connection to the model API broke.', detail);
    return this.unexpected(err);
  }

  private fail(code: ErrorCode, message: string, detail?: string): AttemptFailure {
    return new AttemptFailure(new AppError(code, message), false, undefined, detail);
  }

  private unavailable(message: string, detail?: string): AttemptFailure {
    return new AttemptFailure(new AppError('upstream_unavailable', message), true, undefined, detail);
  }

  private unexpected(err: unknown): AttemptFailure {
    return new AttemptFailure(
      new AppError('internal', 'Unexpected error while calling the model API.'),
      false,
      undefined,
      this.describeUpstream(err),
    );
  }

  /** Exponential backoff with full jitter; at least what `retry-after` asked (capped). */
  private backoff(run: Run, attempt: number, retryAfterMs?: number): Promise<void> {
    const base = Math.max(0, this.settings.retryBaseMs ?? 0);
    let wait = Math.random() * Math.min(MAX_BACKOFF_MS, base * 2 ** attempt);
    if (retryAfterMs !== undefined) wait = Math.max(wait, Math.min(retryAfterMs, MAX_BACKOFF_MS));
    return new Promise<void>((resolve) => {
      run.wake = resolve;
      run.sleepTimer = setTimeout(resolve, wait);
    }).finally(() => {
      run.wake = undefined;
      run.sleepTimer = undefined;
    });
  }

  /** Upstream's own error text, without anything that looks like a key. */
  private upstreamText(err: APIError): string {
    const body = err.error as { message?: unknown } | undefined;
    const raw = typeof body?.message === 'string' ? body.message : '';
    return this.scrub(raw).slice(0, 200);
  }

  private describeUpstream(err: unknown): string {
    if (err instanceof APIError) {
      const status = err.status !== undefined ? `${err.status} ` : '';
      return `${status}${err.constructor.name}${err.status ? ` ${this.upstreamText(err)}` : ''}`.trim();
    }
    return this.scrub(describe(err)).slice(0, 300);
  }

  private scrub(text: string): string {
    let out = text;
    const key = this.settings.apiKey?.trim();
    if (key) out = out.split(key).join('***');
    return out.replace(/\bsk-[A-Za-z0-9_*-]{4,}/g, 'sk-***');
  }
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/** `fetch` that rewrites error answers into OpenAI's error shape (see `normalizeErrorBody`). */
async function normalizingFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const res = await fetch(input, init);
  if (res.status < 400) return res;
  const text = await res.text();
  const headers = new Headers(res.headers);
  headers.delete('content-length');
  headers.delete('content-encoding');
  const normalized = normalizeErrorBody(text);
  if (normalized !== text) headers.set('content-type', 'application/json');
  return new Response(normalized, { status: res.status, statusText: res.statusText, headers });
}

// --- Streaming over node:http ---------------------------------------------------------------------
// The SDK's fetch / web-streams / async-iterator stack cost ~30% of the server's CPU per piece. This
// is the same request (POST /chat/completions, the same JSON body) over node:http with a keep-alive
// agent and a small SSE parser: one JSON.parse per event, events handed over synchronously. Errors
// are the SDK's own classes, so `classify()` and the retry rules read them as before.

const AGENTS = {
  http: new http.Agent({ keepAlive: true, maxSockets: Infinity }),
  https: new https.Agent({ keepAlive: true, maxSockets: Infinity }),
};

interface SseTarget {
  secure: boolean;
  options: http.RequestOptions;
  headers: Record<string, string>;
}

interface SseHandlers {
  /** A 2xx answer arrived (before its first event). */
  accepted: () => void;
  /** One parsed `data:` event (not `[DONE]`, not an `{ "error": … }` event). */
  event: (data: unknown) => void;
}

interface SseRequest {
  /** Resolves at `[DONE]`, at the end of the body, or quietly after `cancel()`; rejects with an
   * `APIError` (HTTP status, `error` event), an `APIConnectionError` (no answer), or a network /
   * parse error met mid-stream. */
  done: Promise<void>;
  /** Destroys the request (the upstream sees the disconnect); `done` resolves. */
  cancel: () => void;
}

/** How a reused kept-alive socket fails when the server had closed it (the request never arrived). */
const STALE_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE']);

/** How much of an error answer is read into memory. */
const MAX_ERROR_BODY = 64 * 1024;
/** After `[DONE]`, how long the rest of the body may take before the socket is dropped. */
const AFTER_DONE_MS = 5_000;

function postSse(target: SseTarget, payload: string, timeoutMs: number, handlers: SseHandlers): SseRequest {
  let settled = false;
  const done = deferred();
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
  const onResponse = (res: http.IncomingMessage) => {
    responded = true;
    res.setEncoding('utf8');
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) {
      let text = '';
      res.on('data', (s: string) => {
        // Enough for any error message (normalizeErrorBody keeps 1,000 characters of it).
        if (text.length < MAX_ERROR_BODY) text += s;
      });
      res.on('error', fail);
      res.on('end', () => settle(httpError(status, text, res.headers)));
      res.on('close', () => settled || fail(prematureClose()));
      return;
    }
    handlers.accepted();
    const parser = new SseParser((data) => {
      if (settled) return false;
      if (data.startsWith('[DONE]')) {
        settle();
        // Let the rest of the body (usually just the chunked terminator) come, so the socket is
        // reused; a server that never ends it loses the socket after a while.
        if (!res.complete) {
          setTimeout(() => {
            if (!res.complete) req.destroy();
          }, Math.min(timeoutMs, AFTER_DONE_MS)).unref();
        }
        return false;
      }
      try {
        const json = JSON.parse(data) as { error?: unknown } | null;
        if (json && json.error) {
          fail(new APIError(undefined, json.error as object, undefined, undefined));
          return false;
        }
        handlers.event(json);
      } catch (err) {
        fail(err);
        return false;
      }
      return !settled;
    });
    res.on('data', (s: string) => {
      if (!settled) parser.push(s);
    });
    res.on('error', fail);
    res.on('end', () => settle());
    res.on('close', () => settled || fail(prematureClose()));
  };
  send(true);
  return {
    done: done.promise,
    cancel: () => {
      settle();
      req.destroy();
    },
  };
}

/** An HTTP error answer as the SDK would have made it (after `normalizeErrorBody`). */
function httpError(status: number, text: string, raw: http.IncomingHttpHeaders): APIError {
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

/** The response closed before its end: a reset, as Node reports it (made only then: an Error costs a stack). */
function prematureClose(): Error {
  return Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
}

/**
 * Server-sent events, as far as a chat completion stream needs them: `data:` fields (with or
 * without the space, several lines joined by `\n`), comments and other fields ignored, events ended
 * by a blank line (LF, CRLF or CR line endings), events split across reads or batched in one. Calls
 * `onData` once per event that has data; `onData` returns false to stop parsing.
 */
export class SseParser {
  private buffer = '';
  /** The last read ended in `\r`: a `\n` opening the next one belongs to it. */
  private pendingCr = false;

  constructor(private readonly onData: (data: string) => boolean) {}

  push(text: string): void {
    let s = text;
    if (this.pendingCr) {
      this.pendingCr = false;
      if (s.startsWith('\n')) s = s.slice(1);
    }
    if (s.indexOf('\r') >= 0) {
      if (s.endsWith('\r')) this.pendingCr = true;
      s = s.replace(/\r\n?/g, '\n');
    }
    const buffer = this.buffer.length > 0 ? this.buffer + s : s;
    let start = 0;
    let end: number;
    while ((end = buffer.indexOf('\n\n', start)) >= 0) {
      const event = buffer.slice(start, end);
      start = end + 2;
      const data = eventData(event);
      if (data !== undefined && !this.onData(data)) {
        this.buffer = '';
        return;
      }
    }
    this.buffer = start === 0 ? buffer : buffer.slice(start);
  }
}

/** The data of one event (its lines without the blank line), or undefined when it has none. */
function eventData(event: string): string | undefined {
  // The common case: one `data: {…}` line.
  if (event.startsWith('data: ') && event.indexOf('\n') < 0) return event.length > 6 ? event.slice(6) : undefined;
  let data: string | undefined;
  let from = 0;
  while (from <= event.length) {
    let to = event.indexOf('\n', from);
    if (to < 0) to = event.length;
    if (event.startsWith('data', from) && (to === from + 4 || event.charCodeAt(from + 4) === 58 /* : */)) {
      let value = to === from + 4 ? '' : event.slice(from + 5, to);
      if (value.startsWith(' ')) value = value.slice(1);
      data = data === undefined ? value : `${data}\n${value}`;
    }
    from = to + 1;
  }
  return data ? data : undefined;
}

/** A socket failure: node:http's (ECONNRESET "socket hang up" / "aborted", ECONNREFUSED, a TLS or
 * stream error mid-body) or undici's (connection reset, "terminated", "other side closed", ...). */
function isNetworkError(err: unknown): boolean {
  const seen = new Set<unknown>();
  let e: any = err;
  while (e && typeof e === 'object' && !seen.has(e)) {
    seen.add(e);
    const code = typeof e.code === 'string' ? e.code : '';
    if (/^(UND_ERR_|ECONN|EPIPE|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ERR_STREAM_PREMATURE_CLOSE|ERR_SSL_|ERR_TLS_)/.test(code)) {
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

function describe(err: unknown): string {
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

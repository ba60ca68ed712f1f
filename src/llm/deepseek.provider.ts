import { Injectable, Logger } from '@nestjs/common';
import OpenAI, {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
} from 'openai';
import type { ChatCompletionChunk, ChatCompletionCreateParamsStreaming } from 'openai/resources/chat/completions';
import { Observable, Subscriber } from 'rxjs';
import { AppError, ErrorCode } from '../common/app-error';
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
  controller?: AbortController;
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
 * The model port on DeepSeek's OpenAI-compatible API (works with any OpenAI-compatible server),
 * through the `openai` SDK with its own retries turned off: this class retries, before the first
 * piece only, and watches for a stream that stops making progress.
 */
@Injectable()
export class DeepSeekProvider extends LlmProvider {
  private readonly logger = new Logger(DeepSeekProvider.name);
  private client?: OpenAI;
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
        run.controller?.abort();
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
    const controller = new AbortController();
    run.controller = controller;
    const timeoutMs = Math.max(1, this.settings.timeoutMs);
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    // Armed now, re-armed on every chunk. Keep-alive comments never reach us through the SDK, so
    // they cannot re-arm it (on purpose: they are not progress).
    const arm = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, timeoutMs);
    };
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

    arm();
    try {
      // `thinking` and friends are fields the SDK's types do not know; it sends the body as is.
      const stream = await this.getClient().chat.completions.create(
        body as unknown as ChatCompletionCreateParamsStreaming,
        { signal: controller.signal },
      );
      // The server took the request: fields left out after a generic refusal were the trouble.
      for (const param of run.tentative.splice(0)) this.unsupported.add(param);
      for await (const chunk of stream) {
        arm();
        if (run.closed) return;
        const reason = this.handleChunk(chunk, subscriber, run, state);
        if (reason !== undefined) {
          finishReason = reason;
          sawFinish = true;
        }
      }
      // The SDK ends the iteration quietly when the request is aborted, so check why it ended.
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
      if (run.controller === controller) run.controller = undefined;
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

/** An undici / socket failure (connection reset, "terminated", "other side closed", ...). */
function isNetworkError(err: unknown): boolean {
  const seen = new Set<unknown>();
  let e: any = err;
  while (e && typeof e === 'object' && !seen.has(e)) {
    seen.add(e);
    const code = typeof e.code === 'string' ? e.code : '';
    if (/^(UND_ERR_|ECONN|EPIPE|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH)/.test(code)) return true;
    if (e instanceof TypeError && /terminated|fetch failed|other side closed/i.test(String(e.message))) return true;
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
    return `${err.name}: ${err.message}${cause instanceof Error ? ` (cause: ${cause.name}: ${cause.message})` : ''}`;
  }
  return String(err);
}

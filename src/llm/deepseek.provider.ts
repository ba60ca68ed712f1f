import { Injectable, Logger } from '@nestjs/common';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { Observable, Subscriber } from 'rxjs';
import { AppError } from '../common/app-error';
import { LlmEvent, LlmProvider, LlmRequest, LlmSettings, LlmUsage } from './llm.provider';
import { ModelList } from './model-list';
import type { OptionalParam } from './openai-compat';
import { estimatedUsage, RequestBodies } from './request-body';
import { postSse, SseRequest, SseStats, SseTarget, sseTarget } from './sse-client';
import { ThinkTagSplitter } from './think-tags';
import { AttemptFailure, BadResponse, UpstreamErrors } from './upstream-errors';

/** Longest single backoff wait, and the most of a `retry-after` we honour. */
const MAX_BACKOFF_MS = 20_000;

/** DeepSeek's (and vLLM's / Ollama's) additions to the OpenAI chunk delta. */
interface DeltaExtras {
  reasoning_content?: string | null;
  /** Ollama / OpenRouter spelling of the same thing. */
  reasoning?: string | null;
}

interface UsageExtras {
  completion_tokens_details?: { reasoning_tokens?: number | null } | null;
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
  /** The model asked for a tool call (`tool_calls` deltas or finish_reason). */
  toolCalls: boolean;
}

/**
 * The model port on DeepSeek's OpenAI-compatible API (works with any OpenAI-compatible server).
 * Answers stream over node:http (`sse-client.ts`); failures are read by `upstream-errors.ts`; the
 * model list comes through the `openai` SDK (`model-list.ts`). This class retries, before the first
 * piece only, watches for a stream that stops making progress, and never passes off an answer with
 * nothing in it as complete.
 */
@Injectable()
export class DeepSeekProvider extends LlmProvider {
  private readonly logger = new Logger(DeepSeekProvider.name);
  private readonly errors: UpstreamErrors;
  private readonly models: ModelList;
  private target?: SseTarget;
  /** Request bodies, without the optional fields this server refused (a 400 naming them). */
  private readonly bodies: RequestBodies;

  constructor(private readonly settings: LlmSettings) {
    super();
    this.errors = new UpstreamErrors(settings.apiKey, settings.baseUrl);
    this.models = new ModelList(settings, this.errors);
    this.bodies = new RequestBodies(settings);
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
        subscriber.error(new AppError('model_not_configured', 'No model API key is configured (set DEEPSEEK_API_KEY).'));
        return;
      }
      const run: Run = { closed: false, emittedPiece: false, tentative: [] };
      this.runWithRetries(request, subscriber, run).catch((err: unknown) => {
        // Only reached for bugs in this class: every upstream failure is mapped inside.
        if (run.closed) return;
        this.logger.error(`Model stream failed unexpectedly: ${this.errors.describe(err)}`);
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

  listModels(): Promise<string[]> {
    return this.models.list(this.isConfigured());
  }

  // ---------------------------------------------------------------------------------------------

  /** Where and how streamed completions are posted (parsed once; the settings do not change). */
  private getTarget(): SseTarget {
    this.target ??= sseTarget(this.settings.baseUrl, this.settings.apiKey!);
    return this.target;
  }

  private async runWithRetries(request: LlmRequest, subscriber: Subscriber<LlmEvent>, run: Run): Promise<void> {
    const body = this.bodies.build(request, this.defaultModel);
    const maxRetries = Math.max(0, Math.floor(this.settings.maxRetries ?? 0));
    /** Optional fields already left out in this run: each is retried without once. */
    const dropped = new Set<string>();
    let attempts = 0;
    for (let retry = 0; ;) {
      let failure: AttemptFailure;
      attempts++;
      try {
        await this.attempt(body, subscriber, run, dropped);
        return;
      } catch (err) {
        if (run.closed) return;
        failure = err instanceof AttemptFailure ? err : this.errors.unexpected(err);
      }
      if (failure.drop && !run.emittedPiece) {
        for (const param of failure.drop.params) {
          delete body[param];
          dropped.add(param);
          if (failure.drop.named) this.bodies.refused(param);
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
        const wait = this.backoffMs(retry, failure.retryAfterMs);
        request.onRetry?.({ attempt: retry + 2, maxAttempts: maxRetries + 1, retryInMs: Math.round(wait), reason: failure.error.code });
        await this.sleep(run, wait);
        retry++;
        if (run.closed) return;
        continue;
      }
      this.logger.warn(`Model request failed (${failure.error.code}) after ${attempts} attempt(s)` + (failure.detail ? `: ${failure.detail}` : ''));
      subscriber.error(failure.error);
      return;
    }
  }

  /** One HTTP request. Resolves when the stream finished (events emitted); throws AttemptFailure. */
  private async attempt(body: Record<string, unknown>, subscriber: Subscriber<LlmEvent>, run: Run, dropped: ReadonlySet<string>) {
    const timeoutMs = Math.max(1, this.settings.timeoutMs);
    let timedOut = false;
    // One timer per attempt that re-checks the time of the last chunk when it fires (no timer per
    // chunk). Only data events are progress: keep-alive comments never move it (on purpose).
    let lastProgress = Date.now();
    let timer: NodeJS.Timeout | undefined;
    let finishReason: string | null = null;
    let sawFinish = false;
    const state: AttemptState = {
      splitter: new ThinkTagSplitter(),
      reasoningChars: 0,
      contentChars: 0,
      sawUsage: false,
      toolCalls: false,
    };
    const context = () => ({ emittedPiece: run.emittedPiece, body, dropped });
    let upstream: SseRequest | undefined;
    const finish = () => {
      this.emitSplit(state.splitter.flush(), subscriber, run, state);
      const stats = upstream?.stats;
      if (stats?.skipped) this.logger.warn(`The model API sent ${stats.skipped} data event(s) that were not JSON; skipped`);
      // Never an empty `complete`: an answer with nothing in it says what came instead.
      if (!run.emittedPiece) throw this.errors.classify(new BadResponse(emptyAnswer(state, stats, finishReason)), context());
      if (!state.sawUsage) subscriber.next({ type: 'usage', usage: estimatedUsage(body, { reasoning: state.reasoningChars, content: state.contentChars }) });
      subscriber.next({
        type: 'finish',
        reason: finishReason,
        complete: finishReason !== 'insufficient_system_resource',
      });
      subscriber.complete();
    };

    try {
      upstream = postSse(this.getTarget(), JSON.stringify(body), timeoutMs, {
        // The server took the request: fields left out after a generic refusal were the trouble.
        accepted: () => {
          for (const param of run.tentative.splice(0)) this.bodies.refused(param);
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
      if (timedOut) throw this.errors.timeout(timeoutMs);
      finish();
    } catch (err) {
      if (run.closed) return;
      if (err instanceof AttemptFailure && err.error.code !== 'upstream_timeout') throw err;
      if (sawFinish) {
        // The answer was complete; only the usage chunk or [DONE] went missing.
        this.logger.warn(`Model stream ended uncleanly after its finish_reason: ${this.errors.describe(err)}`);
        finish();
        return;
      }
      // Whatever the think-tag split held back was received: keep it with the broken answer.
      if (run.emittedPiece) this.emitSplit(state.splitter.flush(), subscriber, run, state);
      if (timedOut || err instanceof AttemptFailure) throw this.errors.timeout(timeoutMs);
      throw this.errors.classify(err, context());
    } finally {
      if (timer) clearTimeout(timer);
      if (upstream && run.cancel === upstream.cancel) run.cancel = undefined;
    }
  }

  /** Emits the events of one chunk; returns its finish_reason when it carries one. */
  private handleChunk(chunk: ChatCompletionChunk, subscriber: Subscriber<LlmEvent>, run: Run, state: AttemptState): string | undefined {
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
      // Tools are not offered here; a model (or server) that calls one anyway is told apart.
      if (reason === 'tool_calls' || reason === 'function_call' || nonEmptyArray(delta.tool_calls) || delta.function_call) {
        state.toolCalls = true;
      }
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

  private emitSplit(pieces: { type: 'reasoning' | 'content'; text: string }[], subscriber: Subscriber<LlmEvent>, run: Run, state: AttemptState): void {
    for (const piece of pieces) {
      if (!piece.text) continue;
      run.emittedPiece = true;
      if (piece.type === 'reasoning') state.reasoningChars += piece.text.length;
      else state.contentChars += piece.text.length;
      subscriber.next({ type: piece.type, text: piece.text });
    }
  }

  /** Exponential backoff with full jitter; at least what `retry-after` asked (capped). */
  private backoffMs(attempt: number, retryAfterMs?: number): number {
    const base = Math.max(0, this.settings.retryBaseMs ?? 0);
    const wait = Math.random() * Math.min(MAX_BACKOFF_MS, base * 2 ** attempt);
    return retryAfterMs === undefined ? wait : Math.max(wait, Math.min(retryAfterMs, MAX_BACKOFF_MS));
  }

  /** Waits before a retry; an unsubscribe wakes it at once. */
  private sleep(run: Run, wait: number): Promise<void> {
    return new Promise<void>((resolve) => {
      run.wake = resolve;
      run.sleepTimer = setTimeout(resolve, wait);
    }).finally(() => {
      run.wake = undefined;
      run.sleepTimer = undefined;
    });
  }
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

function nonEmptyArray(value: unknown): boolean {
  return Array.isArray(value) && value.length > 0;
}

/** The sentence for an answer that ended with nothing to show. */
function emptyAnswer(state: AttemptState, stats: SseStats | undefined, reason: string | null): string {
  if (state.toolCalls) return 'The model asked to call a tool; tools are not enabled here.';
  if (!stats || (stats.events === 0 && stats.skipped === 0)) return "The model API's answer ended without any event.";
  if (stats.events === 0) return `The model API's answer held no usable event (${stats.skipped} not JSON).`;
  return `The model API's answer was empty${reason ? ` (finish_reason ${reason})` : ''}.`;
}

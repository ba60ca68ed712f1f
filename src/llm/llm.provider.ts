import { type Observable } from 'rxjs';

export interface LlmMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface LlmRequest {
  messages: LlmMessage[];
  /** Defaults to the configured model. */
  model?: string;
  /** DeepSeek thinking mode; undefined leaves the upstream default. */
  thinking?: boolean;
  temperature?: number;
  maxTokens?: number;
  /** `reasoning_effort` (e.g. DeepSeek's `high` / `max`); defaults to the configured one, if any. */
  reasoningEffort?: string;
  /** `json_object` asks for JSON mode (`response_format: {type: "json_object"}`); the prompt must say "json". */
  responseFormat?: 'json_object';
  /**
   * Told before each retry of a failed request (only before the first piece), with the wait before
   * it. Not an event of the stream, so consumers that do not ask see the same events as before.
   */
  onRetry?: (retry: LlmRetry) => void;
}

/** A retry about to happen: `attempt` (2 for the first retry) of `maxAttempts`, after `retryInMs`. */
export interface LlmRetry {
  attempt: number;
  maxAttempts: number;
  retryInMs: number;
  /** The upstream error code of the failed attempt (`upstream_unavailable`, `upstream_rate_limited`, …). */
  reason: string;
}

export interface LlmUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  reasoning_tokens?: number;
  /** True when the server reported no usage and these are estimates (about 4 characters a token). */
  estimated?: boolean;
}

/** Events of one streamed completion, in upstream order. */
export type LlmEvent =
  | { type: 'reasoning'; text: string }
  | { type: 'content'; text: string }
  | { type: 'usage'; usage: LlmUsage }
  /** Last event of a stream that ended normally. `complete` false when the model was cut short
   * upstream (finish_reason `insufficient_system_resource`). */
  | { type: 'finish'; reason: string | null; complete: boolean };

/**
 * The model port. An abstract class so it is its own injection token:
 * `{ provide: LlmProvider, useClass: DeepSeekProvider }`.
 */
export abstract class LlmProvider {
  /** The model used when a request names none. */
  abstract readonly defaultModel: string;
  /** False when no API key / endpoint is configured: `stream` then errors with `model_not_configured`. */
  abstract isConfigured(): boolean;
  /**
   * A cold Observable: each subscription makes one HTTP request; unsubscribing aborts it.
   * Errors are `AppError`s with an upstream code (`upstream_auth`, `upstream_quota`,
   * `upstream_rate_limited`, `upstream_unavailable`, `upstream_timeout`, `upstream_interrupted`,
   * `upstream_bad_request`, `upstream_bad_response`, `model_not_configured`). An answer with
   * nothing in it never completes: it errors with `upstream_bad_response`.
   */
  abstract stream(request: LlmRequest): Observable<LlmEvent>;
  /** Model ids from the upstream list; the default model alone when the list cannot be read. */
  abstract listModels(): Promise<string[]>;
}

/** Settings of the DeepSeek / OpenAI-compatible provider, from the validated config. */
export class LlmSettings {
  apiKey?: string;
  baseUrl: string;
  model: string;
  /** No-progress timeout: time allowed without a chunk (keep-alive comments do not count). */
  timeoutMs: number;
  /** Retries of 429/500/503/connection refused, only before the first piece. */
  maxRetries: number;
  retryBaseMs: number;
  /** Where DeepSeek's `thinking` field is sent (`LLM_THINKING_FIELD`); default `auto`. */
  thinkingField?: 'auto' | 'deepseek' | 'none';
  /** `reasoning_effort` sent with every request that does not turn thinking off (`LLM_REASONING_EFFORT`). */
  reasoningEffort?: string;
}

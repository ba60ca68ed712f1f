import { Logger } from '@nestjs/common';
import OpenAI, { APIError } from 'openai';
import type { LlmSettings } from './llm.provider';
import { normalizeErrorBody } from './openai-compat';
import type { UpstreamErrors } from './upstream-errors';

const MODELS_TTL_MS = 60_000;
const MODELS_FAILURE_TTL_MS = 5_000;
const MODELS_TIMEOUT_MS = 10_000;

/**
 * The server's model list (`GET /models`) through the `openai` SDK, with its own retries off:
 * the configured model first, cached for a minute; the configured model alone when the list cannot
 * be read (asked again after a few seconds, or after a minute when the server has no list at all).
 */
export class ModelList {
  private readonly logger = new Logger('DeepSeekProvider');
  private client?: OpenAI;
  private cache?: { ids: string[]; expires: number };
  private inFlight?: Promise<string[]>;

  constructor(
    private readonly settings: LlmSettings,
    private readonly errors: UpstreamErrors,
  ) {}

  async list(configured: boolean): Promise<string[]> {
    const cached = this.cache;
    if (cached && cached.expires > Date.now()) return [...cached.ids];
    if (!configured) return [this.settings.model];
    this.inFlight ??= this.fetch().finally(() => (this.inFlight = undefined));
    return [...(await this.inFlight)];
  }

  private getClient(): OpenAI {
    this.client ??= new OpenAI({
      apiKey: this.settings.apiKey!.trim(),
      baseURL: this.settings.baseUrl.trim(),
      maxRetries: 0,
      // Error answers come in several shapes (vLLM, Ollama, FastAPI, plain text): give the SDK
      // OpenAI's, so the server's own words reach the log.
      fetch: normalizingFetch,
      // Never pick these up from OPENAI_* environment variables meant for something else.
      organization: null,
      project: null,
      webhookSecret: null,
    });
    return this.client;
  }

  private async fetch(): Promise<string[]> {
    const model = this.settings.model;
    const fallback = [model];
    try {
      const page = await this.getClient().models.list({
        timeout: Math.max(1, Math.min(Math.round(this.settings.timeoutMs) || MODELS_TIMEOUT_MS, MODELS_TIMEOUT_MS)),
      });
      const ids = [model];
      for (const m of page.data ?? []) {
        if (typeof m?.id === 'string' && m.id && !ids.includes(m.id)) ids.push(m.id);
      }
      this.cache = { ids, expires: Date.now() + MODELS_TTL_MS };
      return ids;
    } catch (err) {
      // 404/405: the server has no model list (llama.cpp builds, minimal servers); no use asking often.
      const absent = err instanceof APIError && (err.status === 404 || err.status === 405);
      if (absent) this.logger.log(`The model API has no model list (${err.status}); offering ${model} only`);
      else this.logger.warn(`Could not list models: ${this.errors.describe(err)}`);
      this.cache = { ids: fallback, expires: Date.now() + (absent ? MODELS_TTL_MS : MODELS_FAILURE_TTL_MS) };
      return fallback;
    }
  }
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

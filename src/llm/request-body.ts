import type { LlmRequest, LlmSettings, LlmUsage } from './llm.provider';
import { estimateTokens, type OptionalParam, sendsThinkingField } from './openai-compat';

/**
 * The body of a streamed chat-completion request: only the fields this server is known (or
 * configured) to accept. Optional fields a server refused by name are left out of later requests
 * (`refused`), for the life of the provider.
 */
export class RequestBodies {
  private readonly unsupported = new Set<OptionalParam>();

  constructor(private readonly settings: LlmSettings) {}

  build(request: LlmRequest, defaultModel: string): Record<string, unknown> {
    const model = request.model || defaultModel;
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

  /** A field this server refused: later bodies leave it out. */
  refused(param: OptionalParam): void {
    this.unsupported.add(param);
  }
}

/** For servers that send no usage chunk: about four characters a token, marked as estimated. */
export function estimatedUsage(body: Record<string, unknown>, chars: { reasoning: number; content: number }): LlmUsage {
  const messages = Array.isArray(body.messages) ? (body.messages as { content?: unknown }[]) : [];
  const promptChars = messages.reduce((n, m) => n + (typeof m?.content === 'string' ? m.content.length : 0), 0);
  const prompt = estimateTokens(promptChars);
  const reasoning = estimateTokens(chars.reasoning);
  const completion = reasoning + estimateTokens(chars.content);
  const usage: LlmUsage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
  if (reasoning > 0) usage.reasoning_tokens = reasoning;
  usage.estimated = true;
  return usage;
}

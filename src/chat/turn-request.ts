import { Injectable } from '@nestjs/common';
import { Environment } from '../config/environment';
import { type LlmRequest, LlmProvider } from '../llm/llm.provider';
import type { ChatSettings } from '../storage/chats.repository';
import { type FileRow, FilesRepository } from '../storage/files.repository';
import type { ContextMessage } from '../storage/messages.repository';
import { ChatLimits } from './chat-limits';
import { attachmentsWithinBudget, buildContext, withAttachedText } from './context';

/** The model request of a turn, and what the answer's row records of it. */
export interface TurnRequest {
  model: string;
  request: LlmRequest;
  /** Whole turns left out, oldest first, to fit CONTEXT_TOKENS. */
  omittedTurns: number;
}

/**
 * Builds a turn's model request from the chat's history and settings: the model, the limits, and the
 * history that fits CONTEXT_TOKENS with the text of its attachments.
 */
@Injectable()
export class TurnRequests {
  constructor(
    private readonly llm: LlmProvider,
    private readonly files: FilesRepository,
    private readonly limits: ChatLimits,
    private readonly env: Environment,
  ) {}

  /** False when no model API key is configured: a turn is stored but not answered. */
  get configured(): boolean {
    return this.llm.isConfigured();
  }

  /** The request answering the newest turn of `history`; `known` are files already read (the new message's). */
  async build(history: ContextMessage[], settings: ChatSettings, userId: string, known: FileRow[] = []): Promise<TurnRequest> {
    const context = buildContext(await this.withAttachments(history, userId, known), settings.system_prompt, this.env.CONTEXT_TOKENS);
    const model = settings.model ?? this.llm.defaultModel;
    return {
      model,
      omittedTurns: context.omittedTurns,
      request: {
        messages: context.messages,
        model,
        thinking: settings.thinking,
        temperature: settings.temperature,
        maxTokens: this.limits.maxTokens(settings.max_tokens),
      },
    };
  }

  /**
   * Messages whose attachments' text is appended, as the model sees them (now and in later turns).
   * Only the files of turns that can still fit CONTEXT_TOKENS are read (their sizes tell).
   */
  private async withAttachments(messages: ContextMessage[], userId: string, known: FileRow[]): Promise<ContextMessage[]> {
    const ids = [...new Set(messages.flatMap((message) => message.attachments))];
    if (!ids.length) return messages;
    const files = new Map(known.map((f) => [f.id, f]));
    const sizes = new Map(known.map((f) => [f.id, f.size]));
    const unsized = ids.filter((id) => !sizes.has(id));
    if (unsized.length) for (const { id, size } of await this.files.sizesOf(unsized, userId)) sizes.set(id, size);
    const unread = attachmentsWithinBudget(messages, sizes, this.env.CONTEXT_TOKENS).filter((id) => !files.has(id));
    if (unread.length) for (const file of await this.files.findFiles([...new Set(unread)], userId)) files.set(file.id, file);
    return messages.map((message) => {
      if (!message.attachments.length) return message;
      const parts = message.attachments.map((id) => files.get(id)).filter((f) => f !== undefined);
      return { ...message, content: withAttachedText(message.content, parts) };
    });
  }
}

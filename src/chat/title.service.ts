import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { lastValueFrom, reduce, Subject, takeUntil } from 'rxjs';
import { AppError } from '../common/app-error';
import { Environment } from '../config/environment';
import { LlmProvider, LlmUsage } from '../llm/llm.provider';
import { ChatsRepository } from '../storage/chats.repository';
import { UsageRepository } from '../storage/usage.repository';
import { Fanout } from '../transport/fanout';
import { plainLine, titleFrom } from './context';

/** The instruction of a title request (a test fake tells title requests apart by "short title"). */
export const TITLE_PROMPT =
  'Write a short title (2 to 6 words) for the conversation below, in the language of its question. ' +
  'Reply with the title only: no quotes, no Markdown, no full stop.';
/** How much of the question and of the answer the title request carries. */
const EXCERPT_CHARS = 1500;
/** Room for a title (and for a model that thinks a little first). */
const TITLE_MAX_TOKENS = 64;

export interface FirstTurn {
  chatId: string;
  userId: string;
  /** The title the chat was given at creation (its first line): replaced only while still this. */
  fallback: string;
  question: string;
  answer: string;
  /** The room of the chat's viewers. */
  room: string;
}

/**
 * Generated titles: after a new chat's first answer a separate, small model call (the default model,
 * none of the chat's options) asks for a title. The answer never waits for it; its usage counts for
 * the user; on failure, or with GENERATED_TITLES=false, the chat keeps its first line. A title the
 * user set meanwhile is never overwritten.
 */
@Injectable()
export class TitleService implements OnApplicationShutdown {
  private readonly logger = new Logger(TitleService.name);
  /** Ends every title request still running when the app shuts down. */
  private readonly shutdown = new Subject<void>();
  private closed = false;

  constructor(
    private readonly llm: LlmProvider,
    private readonly chats: ChatsRepository,
    private readonly usage: UsageRepository,
    private readonly fanout: Fanout,
    private readonly env: Environment,
  ) {}

  get enabled(): boolean {
    return this.env.GENERATED_TITLES === 'true' && this.llm.isConfigured();
  }

  /** Asks for the title and applies it; never throws (a failure leaves the first line). */
  async afterFirstAnswer(turn: FirstTurn): Promise<void> {
    if (!this.enabled || this.closed) return;
    try {
      const { text, usage } = await this.ask(turn);
      if (usage) await this.usage.record(turn.userId, 'title', usage);
      const title = cleanTitle(text);
      if (!title || title === turn.fallback || this.closed) return;
      if (!(await this.chats.retitle(turn.chatId, turn.fallback, title))) return;
      this.fanout.publish(turn.room, { type: 'chat_updated', chat_id: turn.chatId, title });
    } catch (error) {
      if (this.closed) return;
      const reason = error instanceof AppError ? error.code : String(error);
      this.logger.warn(`chat ${turn.chatId}: no generated title (${reason}); the first line stays`);
    }
  }

  onApplicationShutdown(): void {
    this.closed = true;
    this.shutdown.next();
    this.shutdown.complete();
  }

  private ask(turn: FirstTurn): Promise<{ text: string; usage?: LlmUsage }> {
    const conversation = `Question:\n${turn.question.slice(0, EXCERPT_CHARS)}\n\nAnswer:\n${turn.answer.slice(0, EXCERPT_CHARS)}`;
    // A provider may emit and complete synchronously (a host's own model): no hand-kept subscription.
    const events = this.llm.stream({
      messages: [
        { role: 'system', content: TITLE_PROMPT },
        { role: 'user', content: conversation },
      ],
      thinking: false,
      maxTokens: TITLE_MAX_TOKENS,
    });
    return lastValueFrom(
      events.pipe(
        takeUntil(this.shutdown),
        reduce(
          (reply: { text: string; usage?: LlmUsage }, event) => {
            if (event.type === 'content') reply.text += event.text;
            else if (event.type === 'usage') reply.usage = event.usage;
            return reply;
          },
          { text: '' },
        ),
      ),
    );
  }
}

/** The model's reply as a title: its first line, no Markdown, quotes, "Title:" or full stop; at most 60 characters. */
export function cleanTitle(reply: string): string {
  const line =
    reply
      .split(/\r?\n/)
      .map(plainLine)
      .find((l) => l.length > 0) ?? '';
  const bare = line
    .replace(/^title\s*:\s*/i, '')
    .replace(/^["'“”‘’«»]+|["'“”‘’«»]+$/g, '')
    .replace(/\.$/, '')
    .trim();
  return bare ? titleFrom(bare) : '';
}

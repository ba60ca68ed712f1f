import { Injectable } from '@nestjs/common';
import { RateLimits } from '../auth/rate-limits';
import { AppError } from '../common/app-error';
import { Environment } from '../config/environment';
import { LlmProvider } from '../llm/llm.provider';
import { FileRow, FilesRepository } from '../storage/files.repository';
import { estimateTokens, withAttachedText } from './context';
import { ChatOptionsDto } from './dto/user-message.dto';

const HOUR_MS = 3_600_000;

/**
 * The per-user limits of the chat's own features (attachments, stored files, imports, options).
 * Each check runs before anything is written or sent to the model, and refuses with the setting's
 * name in its message.
 */
@Injectable()
export class ChatLimits {
  constructor(
    private readonly env: Environment,
    private readonly llm: LlmProvider,
    private readonly files: FilesRepository,
    private readonly rates: RateLimits,
  ) {}

  /** One more answer for the user: at most MAX_RUNNING_PER_USER streaming at once (`running` now), RATE_LIMIT_PER_MINUTE messages a minute. */
  async admitAnswer(userId: string, running: number): Promise<void> {
    this.rates.checkRunning(running);
    await this.rates.consumeMessage(userId);
  }

  /** A message's attachments: at most MAX_ATTACHMENTS_PER_MESSAGE files of the user's, MAX_ATTACHMENT_BYTES_PER_TURN in all. */
  async attachments(ids: string[] | undefined, userId: string): Promise<FileRow[]> {
    if (!ids?.length) return [];
    const most = this.env.MAX_ATTACHMENTS_PER_MESSAGE;
    if (ids.length > most) {
      throw new AppError('limit_exceeded', `attachments: at most ${most} files per message (MAX_ATTACHMENTS_PER_MESSAGE)`, { field: 'attachments' });
    }
    const files = await this.files.findFiles(ids, userId);
    const owned = new Set(files.map((f) => f.id));
    const missing = ids.find((id) => !owned.has(id));
    if (missing) throw new AppError('not_found', `attachment ${missing} does not exist`, { field: 'attachments' });
    const bytes = files.reduce((sum, f) => sum + f.size, 0);
    const allowed = this.env.MAX_ATTACHMENT_BYTES_PER_TURN;
    if (bytes > allowed) {
      throw new AppError('limit_exceeded', `attachments: ${bytes} bytes; at most ${allowed} per message (MAX_ATTACHMENT_BYTES_PER_TURN)`, {
        field: 'attachments',
      });
    }
    return files;
  }

  /** The newest message with its attached files (and the system prompt) must fit in CONTEXT_TOKENS. */
  fitsContext(content: string, files: FileRow[], systemPrompt: string | undefined): void {
    if (!files.length) return;
    const tokens = estimateTokens(withAttachedText(content, files)) + (systemPrompt ? estimateTokens(systemPrompt) : 0);
    const budget = this.env.CONTEXT_TOKENS;
    if (tokens > budget) {
      throw new AppError('limit_exceeded', `attachments: the message with its files is about ${tokens} tokens; at most ${budget} fit (CONTEXT_TOKENS)`, {
        field: 'attachments',
      });
    }
  }

  /** `options.max_tokens` up to MAX_TOKENS_LIMIT; `options.model` one of `/api/models` (the provider caches that list). */
  async options(options: ChatOptionsDto | undefined): Promise<void> {
    const most = this.env.MAX_TOKENS_LIMIT;
    if (typeof options?.max_tokens === 'number' && options.max_tokens > most) {
      throw new AppError('invalid_message', `options.max_tokens: at most ${most} (MAX_TOKENS_LIMIT)`, { field: 'options.max_tokens' });
    }
    const model = options?.model;
    if (typeof model === 'string' && model !== this.llm.defaultModel && !(await this.llm.listModels()).includes(model)) {
      throw new AppError('invalid_message', `options.model: ${JSON.stringify(model)} is not offered here (see /api/models)`, { field: 'options.model' });
    }
  }

  /** `max_tokens` for the model request: a chat's stored setting never above today's MAX_TOKENS_LIMIT. */
  maxTokens(stored: number | undefined): number | undefined {
    return stored === undefined ? undefined : Math.min(stored, this.env.MAX_TOKENS_LIMIT);
  }

  /** An upload of `size` bytes must stay within the user's FILE_QUOTA_BYTES. */
  async fileQuota(userId: string, size: number): Promise<void> {
    const quota = this.env.FILE_QUOTA_BYTES;
    if (quota <= 0) return;
    const used = await this.files.bytesOf(userId);
    if (used + size > quota) {
      throw new AppError('limit_exceeded', `file storage quota: ${used} of ${quota} bytes used; this file needs ${size} (FILE_QUOTA_BYTES)`);
    }
  }

  /** Counts one import of the user's: at most IMPORTS_PER_HOUR in any hour. */
  async consumeImport(userId: string): Promise<void> {
    const most = this.env.IMPORTS_PER_HOUR;
    const wait = await this.rates.consume('import', userId, most, HOUR_MS);
    if (wait > 0) {
      throw new AppError('limit_exceeded', `imports: at most ${most} per hour (IMPORTS_PER_HOUR); try again in ${Math.ceil(wait / 60_000)} min`, {
        retry_after_ms: wait,
      });
    }
  }
}

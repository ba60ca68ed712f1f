import { Injectable } from '@nestjs/common';
import { Kysely, Selectable } from 'kysely';
import { nowIso } from '../common/clock';
import { Database, MessagesTable } from './schema';

export type MessageRow = Selectable<MessagesTable>;
export type MessageStatus = MessagesTable['status'];

export interface NewMessage {
  id: string;
  chat_id: string;
  role: 'user' | 'assistant';
  content: string;
  status: MessageStatus;
  model?: string | null;
  request_id?: string | null;
}

export interface FinalMessage {
  content: string;
  reasoning: string | null;
  status: MessageStatus;
  seq: number;
  usage?: Record<string, unknown> | null;
  error_code?: string | null;
}

@Injectable()
export class MessagesRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(message: NewMessage): Promise<MessageRow> {
    const now = nowIso();
    const row: MessageRow = {
      id: message.id,
      chat_id: message.chat_id,
      role: message.role,
      content: message.content,
      reasoning: null,
      status: message.status,
      model: message.model ?? null,
      usage: null,
      error_code: null,
      request_id: message.request_id ?? null,
      seq: 0,
      created_at: now,
      updated_at: now,
    };
    await this.db.insertInto('messages').values(row).execute();
    return row;
  }

  findById(id: string): Promise<MessageRow | undefined> {
    return this.db.selectFrom('messages').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** The message when it exists and its chat belongs to `userId`. */
  findOwned(id: string, userId: string): Promise<MessageRow | undefined> {
    return this.db
      .selectFrom('messages')
      .innerJoin('chats', 'chats.id', 'messages.chat_id')
      .selectAll('messages')
      .where('messages.id', '=', id)
      .where('chats.user_id', '=', userId)
      .executeTakeFirst();
  }

  /** Oldest first. */
  listByChat(chatId: string): Promise<MessageRow[]> {
    return this.db.selectFrom('messages').selectAll().where('chat_id', '=', chatId).orderBy('created_at', 'asc').execute();
  }

  /** The text so far of a message still streaming (called about once a second, never per piece). */
  async snapshot(id: string, content: string, reasoning: string | null, seq: number): Promise<void> {
    await this.db
      .updateTable('messages')
      .set({ content, reasoning, seq, updated_at: nowIso() })
      .where('id', '=', id)
      .where('status', '=', 'streaming')
      .execute();
  }

  async finish(id: string, final: FinalMessage): Promise<void> {
    await this.db
      .updateTable('messages')
      .set({
        content: final.content,
        reasoning: final.reasoning,
        status: final.status,
        seq: final.seq,
        usage: final.usage ? JSON.stringify(final.usage) : null,
        error_code: final.error_code ?? null,
        updated_at: nowIso(),
      })
      .where('id', '=', id)
      .execute();
  }

  /** After a crash: whatever was left `streaming` ended part-way. Returns how many. */
  async interruptAllStreaming(): Promise<number> {
    const result = await this.db
      .updateTable('messages')
      .set({ status: 'interrupted', updated_at: nowIso() })
      .where('status', '=', 'streaming')
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }
}

import { Injectable } from '@nestjs/common';
import { Kysely } from 'kysely';
import { randomUUID } from 'node:crypto';
import { nowIso } from '../common/clock';
import type { Usage } from './messages.repository';
import { Database } from './schema';

/** The model's own usage figures of every call made for a user: chat answers, Solver runs, other calls (titles). */
@Injectable()
export class UsageRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** The usage figures of each call; `answers` of them are chat answers (listed first). */
  async usageOf(userId: string): Promise<{ usage: Usage[]; answers: number }> {
    const answers = await this.db
      .selectFrom('messages')
      .innerJoin('chats', 'chats.id', 'messages.chat_id')
      .select('messages.usage')
      .where('chats.user_id', '=', userId)
      .where('messages.usage', 'is not', null)
      .execute();
    const runs = await this.db.selectFrom('solver_runs').select('usage').where('user_id', '=', userId).where('usage', 'is not', null).execute();
    const other = await this.db.selectFrom('model_calls').select('usage').where('user_id', '=', userId).execute();
    return { usage: [...answers, ...runs, ...other].map((row) => JSON.parse(row.usage!) as Usage), answers: answers.length };
  }

  /** A model call for the user that is not an answer or a Solver run (`purpose`: `title`). */
  async record(userId: string, purpose: string, usage: object): Promise<void> {
    await this.db
      .insertInto('model_calls')
      .values({ id: randomUUID(), user_id: userId, purpose, usage: JSON.stringify(usage), created_at: nowIso() })
      .execute();
  }
}

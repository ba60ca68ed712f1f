import { Injectable } from '@nestjs/common';
import { Kysely } from 'kysely';
import { Database } from './schema';

/** The model's own usage figures of every call made for a user: chat answers and Solver runs. */
@Injectable()
export class UsageRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async usageOf(userId: string): Promise<string[]> {
    const answers = await this.db
      .selectFrom('messages')
      .innerJoin('chats', 'chats.id', 'messages.chat_id')
      .select('messages.usage')
      .where('chats.user_id', '=', userId)
      .where('messages.usage', 'is not', null)
      .execute();
    const runs = await this.db
      .selectFrom('solver_runs')
      .select('usage')
      .where('user_id', '=', userId)
      .where('usage', 'is not', null)
      .execute();
    return [...answers, ...runs].map((row) => row.usage as string);
  }
}

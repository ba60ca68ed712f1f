import { Injectable } from '@nestjs/common';
import { Kysely, Selectable } from 'kysely';
import { nowIso } from '../common/clock';
import { Database, SharesTable } from './schema';

export type Share = Selectable<SharesTable>;

/** Read-only links to a chat (`/share/<token>`); a chat's are deleted with it (`ChatsRepository.delete`). */
@Injectable()
export class SharesRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(share: Omit<Share, 'created_at'>): Promise<void> {
    await this.db
      .insertInto('shares')
      .values({ ...share, created_at: nowIso() })
      .execute();
  }

  findByToken(token: string): Promise<Share | undefined> {
    return this.db.selectFrom('shares').selectAll().where('token', '=', token).executeTakeFirst();
  }

  async deleteByChat(chatId: string): Promise<void> {
    await this.db.deleteFrom('shares').where('chat_id', '=', chatId).execute();
  }
}

import { Injectable } from '@nestjs/common';
import { Kysely, Selectable } from 'kysely';
import { nowIso } from '../common/clock';
import { Database, SessionsTable, UsersTable } from './schema';

export type UserRow = Selectable<UsersTable>;
export type SessionRow = Selectable<SessionsTable>;

@Injectable()
export class UsersRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Creates a user; the first user ever is the admin. False when the name is taken. */
  async create(user: { id: string; username: string; passwordHash: string }): Promise<UserRow | undefined> {
    return this.db.transaction().execute(async (trx) => {
      const key = user.username.toLowerCase();
      const taken = await trx.selectFrom('users').select('id').where('username_key', '=', key).executeTakeFirst();
      if (taken) return undefined;
      const any = await trx.selectFrom('users').select('id').limit(1).executeTakeFirst();
      const row: UserRow = {
        id: user.id,
        username: user.username,
        username_key: key,
        password_hash: user.passwordHash,
        is_admin: any ? 0 : 1,
        created_at: nowIso(),
      };
      await trx.insertInto('users').values(row).execute();
      return row;
    });
  }

  async count(): Promise<number> {
    const row = await this.db
      .selectFrom('users')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  findByUsername(username: string): Promise<UserRow | undefined> {
    return this.db.selectFrom('users').selectAll().where('username_key', '=', username.toLowerCase()).executeTakeFirst();
  }

  findById(id: string): Promise<UserRow | undefined> {
    return this.db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async createSession(session: SessionRow): Promise<void> {
    await this.db.insertInto('sessions').values(session).execute();
  }

  /** The live session and its user, or undefined when unknown or expired. */
  async findSession(idHash: string, now: string): Promise<{ session: SessionRow; user: UserRow } | undefined> {
    const row = await this.db
      .selectFrom('sessions')
      .innerJoin('users', 'users.id', 'sessions.user_id')
      .selectAll('users')
      .select(['sessions.id_hash', 'sessions.created_at as session_created_at', 'sessions.expires_at'])
      .where('sessions.id_hash', '=', idHash)
      .where('sessions.expires_at', '>', now)
      .executeTakeFirst();
    if (!row) return undefined;
    const { id_hash, session_created_at, expires_at, ...user } = row;
    return { session: { id_hash, user_id: user.id, created_at: session_created_at, expires_at }, user };
  }

  async deleteSession(idHash: string): Promise<void> {
    await this.db.deleteFrom('sessions').where('id_hash', '=', idHash).execute();
  }

  async setPassword(userId: string, passwordHash: string): Promise<void> {
    await this.db.updateTable('users').set({ password_hash: passwordHash }).where('id', '=', userId).execute();
  }

  /** Ends every session of a user but `keep` (the one that asked). */
  async deleteOtherSessions(userId: string, keep: string): Promise<void> {
    await this.db.deleteFrom('sessions').where('user_id', '=', userId).where('id_hash', '!=', keep).execute();
  }

  async setting(key: string): Promise<string | undefined> {
    const row = await this.db.selectFrom('server_settings').select('value').where('key', '=', key).executeTakeFirst();
    return row?.value;
  }

  async setSetting(key: string, value: string): Promise<void> {
    await this.db
      .insertInto('server_settings')
      .values({ key, value })
      .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
      .execute();
  }

  async deleteExpiredSessions(now: string): Promise<void> {
    await this.db.deleteFrom('sessions').where('expires_at', '<=', now).execute();
  }
}

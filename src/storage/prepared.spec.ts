import { Logger } from '@nestjs/common';
import type { Kysely } from 'kysely';
import { usingPostgres } from '../../test/support/databases';
import { useTempDatabase } from '../../test/support/temp-database';
import { type NewChat, newChat } from './chats.repository';
import { PreparedStatements } from './prepared';
import type { Database } from './schema';

/** A chat row as stored (its settings as JSON text). */
const chatRow = (chat: NewChat) => ({ ...newChat(chat), settings: JSON.stringify(chat.settings ?? {}) });

describe(`PreparedStatements (${usingPostgres() ? 'PostgreSQL' : 'SQLite file'})`, () => {
  const database = useTempDatabase();
  let db: Kysely<Database>;

  beforeAll(() => Logger.overrideLogger(false));
  beforeEach(() => {
    db = database.db;
  });

  it('compiles a shape once and binds each call its own values, in the order of the SQL', async () => {
    const prepared = new PreparedStatements();
    const build = jest.fn((row: ReturnType<typeof chatRow>) => db.insertInto('chats').values(row));
    const first = prepared.bind('insert', chatRow({ id: 'c1', userId: 'u1', title: 'one' }), build);
    const second = prepared.bind('insert', chatRow({ id: 'c2', userId: 'u2', title: 'two', settings: { thinking: true } }), build);
    expect(build).toHaveBeenCalledTimes(1);
    expect(second.sql).toBe(first.sql);
    await db.executeQuery(first);
    await db.executeQuery(second);
    const rows = await db.selectFrom('chats').select(['id', 'user_id', 'title', 'settings']).orderBy('id').execute();
    expect(rows).toEqual([
      { id: 'c1', user_id: 'u1', title: 'one', settings: '{}' },
      { id: 'c2', user_id: 'u2', title: 'two', settings: '{"thinking":true}' },
    ]);
  });

  it('leaves undefined values out as Kysely does (the column takes its default): another shape, not a NULL', async () => {
    const prepared = new PreparedStatements();
    const insert = (row: Record<string, unknown>) => prepared.bind('insert', row, (v) => db.insertInto('chats').values(v as never));
    await db.executeQuery(insert(chatRow({ id: 'c1', userId: 'u1', title: 'one' })));
    // No user: user_id is NOT NULL with a default; bound as NULL this insert would fail.
    await db.executeQuery(insert({ ...chatRow({ id: 'c2', userId: 'x', title: 'two' }), user_id: undefined }));
    await db.executeQuery(insert(chatRow({ id: 'c3', userId: 'u3', title: 'three' })));
    const rows = await db.selectFrom('chats').select(['id', 'user_id']).orderBy('id').execute();
    expect(rows.map((r) => r.id)).toEqual(['c1', 'c2', 'c3']);
    expect(rows[0].user_id).toBe('u1');
    expect(rows[1].user_id).not.toBeNull();
    expect(rows[2].user_id).toBe('u3');
  });

  it('keeps the literals of the statement as compiled', async () => {
    const prepared = new PreparedStatements();
    await db.executeQuery(prepared.bind('insert', chatRow({ id: 'c1', userId: 'u1', title: 'old' }), (row) => db.insertInto('chats').values(row)));
    const rename = (id: string, title: string) =>
      prepared.bind('rename unless archived', { id, title }, (v) =>
        db.updateTable('chats').set({ title: v.title }).where('id', '=', v.id).where('title', '!=', 'archived'),
      );
    await db.executeQuery(rename('c1', 'archived'));
    await db.executeQuery(rename('c1', 'new'));
    expect((await db.selectFrom('chats').select('title').executeTakeFirst())?.title).toBe('archived');
  });

  it('refuses a shape that does not use a value as a parameter (it could not be bound later)', () => {
    const prepared = new PreparedStatements();
    expect(() => prepared.bind('touch', { id: 'c1', unused: 1 }, (v) => db.updateTable('chats').set({ title: 'x' }).where('id', '=', v.id))).toThrow(
      'prepared statement touch: unused is not one of its parameters',
    );
  });
});

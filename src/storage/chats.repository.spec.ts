import { Logger } from '@nestjs/common';
import { type Kysely } from 'kysely';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { tempDatabaseUrl, usingPostgres } from '../../test/support/databases';
import { repositoriesOn } from '../../test/support/temp-database';
import { newChat, ChatsRepository, IMPORTING } from './chats.repository';
import { migrate, openDatabase, sqlitePath } from './database.provider';
import { newMessage, MessagesRepository } from './messages.repository';
import { GroupCommit } from './group-commit';
import type { Database } from './schema';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * The database's refusal, by its message. (Not `rejects.toThrow`: better-sqlite3's native addon is
 * loaded once per Jest worker, so its errors may come from another test file's realm and fail
 * Jest's `instanceof Error` check.)
 */
async function refusal(attempt: Promise<unknown>): Promise<string> {
  try {
    await attempt;
  } catch (error) {
    return String((error as { message?: unknown })?.message ?? error);
  }
  throw new Error('expected the database to refuse');
}
const UNIQUE = /UNIQUE constraint failed|duplicate key value violates unique constraint/;
const FOREIGN_KEY = /FOREIGN KEY constraint failed|violates foreign key constraint/;

/** A fresh database, then gone: a SQLite file in its own folder, or (postgres project) a schema of its own. */
function freshDatabase(): { url: string; cleanup: () => void } {
  const url = tempDatabaseUrl();
  const dir = url.startsWith('sqlite:') ? dirname(sqlitePath(url)) : undefined;
  return { url, cleanup: () => dir && rmSync(dir, { recursive: true, force: true }) };
}

/** "Medium" tests: the real repository on a real database, fresh for every test. */
describe(`ChatsRepository (${usingPostgres() ? 'PostgreSQL' : 'SQLite file'})`, () => {
  let url: string;
  let cleanup: () => void;
  let db: Kysely<Database>;
  let chats: ChatsRepository;
  let messages: MessagesRepository;

  beforeAll(() => Logger.overrideLogger(false));
  beforeEach(async () => {
    ({ url, cleanup } = freshDatabase());
    db = await openDatabase(url);
    const module = await repositoriesOn(db);
    chats = module.get(ChatsRepository);
    messages = module.get(MessagesRepository);
  });
  afterEach(async () => {
    await db?.destroy();
    cleanup();
  });

  it('creates a chat with empty settings and finds it by id', async () => {
    const row = await chats.create({ id: 'chat-1', userId: 'u1', title: 'First' });
    expect(row).toEqual({
      id: 'chat-1',
      user_id: 'u1',
      title: 'First',
      settings: {},
      created_at: row.created_at,
      updated_at: row.created_at,
    });
    expect(row.created_at).toMatch(ISO);
    expect(await chats.findById('chat-1')).toEqual(row);
    expect(await chats.findById('nope')).toBeUndefined();
  });

  it('insert writes a new chat with its first messages in one transaction; a failing message leaves no chat', async () => {
    const chat = newChat({ id: 'c-new', userId: 'u1', title: 'First' });
    const rows = [
      newMessage({ id: 'm-user', chat_id: 'c-new', role: 'user', content: 'Q', status: 'complete' }),
      newMessage({ id: 'm-answer', chat_id: 'c-new', role: 'assistant', content: '', status: 'streaming' }),
    ];
    await chats.insert(chat, rows);
    expect(await chats.findById('c-new')).toEqual(chat);
    expect(await messages.listByChat('c-new')).toEqual(rows);

    // the same message id again: the transaction fails as a whole
    const other = newChat({ id: 'c-other', userId: 'u1', title: 'Second' });
    // (matched by message: better-sqlite3's error class may come from another test file's realm)
    await expect(chats.insert(other, [newMessage({ id: 'm-user', chat_id: 'c-other', role: 'user', content: 'Q', status: 'complete' })])).rejects.toMatchObject(
      {
        message: expect.stringMatching(UNIQUE),
      },
    );
    expect(await chats.findById('c-other')).toBeUndefined();
  });

  it('stores settings given at creation as JSON and reads them back as an object', async () => {
    await chats.create({ id: 'c', userId: 'u1', title: 't', settings: { model: 'm', temperature: 0.3 } });
    expect((await chats.findById('c'))?.settings).toEqual({ model: 'm', temperature: 0.3 });
    const stored = await db.selectFrom('chats').select('settings').where('id', '=', 'c').executeTakeFirstOrThrow();
    expect(stored.settings).toBe('{"model":"m","temperature":0.3}');
  });

  it('refuses a second chat with the same id', async () => {
    await chats.create({ id: 'dup', userId: 'u1', title: 'a' });
    expect(await refusal(chats.create({ id: 'dup', userId: 'u1', title: 'b' }))).toMatch(UNIQUE);
    expect((await chats.findById('dup'))?.title).toBe('a');
  });

  it('lists newest activity first: creation, rename and touch all move a chat to the top', async () => {
    await chats.create({ id: 'a', userId: 'u1', title: 'A' });
    await chats.create({ id: 'b', userId: 'u1', title: 'B' });
    await chats.create({ id: 'c', userId: 'u1', title: 'C' });
    expect((await chats.list('u1')).map((c) => c.id)).toEqual(['c', 'b', 'a']);

    await chats.update('a', { title: 'A2' });
    expect((await chats.list('u1')).map((c) => c.id)).toEqual(['a', 'c', 'b']);

    await chats.touch('b');
    expect((await chats.list('u1')).map((c) => c.id)).toEqual(['b', 'a', 'c']);
    expect((await chats.list('u1', 2)).map((c) => c.id)).toEqual(['b', 'a']);
  });

  it("lists only the given user's chats, and findOwned finds a chat only for its owner", async () => {
    await chats.create({ id: 'mine', userId: 'u1', title: 'Mine' });
    await chats.create({ id: 'theirs', userId: 'u2', title: 'Theirs' });
    expect((await chats.list('u1')).map((c) => c.id)).toEqual(['mine']);
    expect((await chats.list('u2')).map((c) => c.id)).toEqual(['theirs']);
    expect(await chats.list('nobody')).toEqual([]);
    expect((await chats.findOwned('mine', 'u1'))?.title).toBe('Mine');
    expect(await chats.findOwned('mine', 'u2')).toBeUndefined();
    expect(await chats.findOwned('missing', 'u1')).toBeUndefined();
  });

  it('update renames without touching settings, and moves updated_at but not created_at', async () => {
    const created = await chats.create({ id: 'c', userId: 'u1', title: 'Old', settings: { model: 'x' } });
    const renamed = await chats.update('c', { title: 'New' });
    expect(renamed).toEqual({
      id: 'c',
      user_id: 'u1',
      title: 'New',
      settings: { model: 'x' },
      created_at: created.created_at,
      updated_at: renamed!.updated_at,
    });
    expect(renamed!.updated_at > created.updated_at).toBe(true);
  });

  it('update replaces settings with the given JSON and keeps the title', async () => {
    await chats.create({ id: 'c', userId: 'u1', title: 'Keep', settings: { model: 'x', thinking: true } });
    const row = await chats.update('c', { settings: { system_prompt: 'Be brief', max_tokens: 10 } });
    expect(row?.title).toBe('Keep');
    expect(row!.settings).toEqual({ system_prompt: 'Be brief', max_tokens: 10 });
  });

  it('update of an unknown chat changes nothing and answers undefined', async () => {
    await chats.create({ id: 'c', userId: 'u1', title: 'T' });
    expect(await chats.update('missing', { title: 'x' })).toBeUndefined();
    expect((await chats.list('u1')).map((c) => c.title)).toEqual(['T']);
  });

  it('delete removes the chat and its messages, and leaves other chats alone', async () => {
    await chats.create({ id: 'gone', userId: 'u1', title: 'G' });
    await chats.create({ id: 'kept', userId: 'u1', title: 'K' });
    await messages.insert({ id: 'm1', chat_id: 'gone', role: 'user', content: 'hi', status: 'complete' });
    await messages.insert({ id: 'm2', chat_id: 'gone', role: 'assistant', content: 'yo', status: 'complete' });
    await messages.insert({ id: 'm3', chat_id: 'kept', role: 'user', content: 'stay', status: 'complete' });

    expect(await chats.delete('gone')).toBe(true);

    expect(await chats.findById('gone')).toBeUndefined();
    expect(await messages.listByChat('gone')).toEqual([]);
    expect(await messages.findById('m1')).toBeUndefined();
    expect((await messages.listByChat('kept')).map((m) => m.id)).toEqual(['m3']);
    expect(await chats.delete('gone')).toBe(false);
  });

  it('the schema itself cascades: deleting a chat row removes its messages (foreign keys are on)', async () => {
    await chats.create({ id: 'c', userId: 'u1', title: 'T' });
    await messages.insert({ id: 'm', chat_id: 'c', role: 'user', content: 'x', status: 'complete' });
    await db.deleteFrom('chats').where('id', '=', 'c').execute();
    expect(await messages.findById('m')).toBeUndefined();
    const orphan = messages.insert({ id: 'orphan', chat_id: 'no-such-chat', role: 'user', content: 'x', status: 'complete' });
    expect(await refusal(orphan)).toMatch(FOREIGN_KEY);
  });

  describe('insertImported', () => {
    const rowsOf = (chatId: string, n: number) =>
      Array.from({ length: n }, (_, i) =>
        newMessage({ id: `${chatId}-m${i}`, chat_id: chatId, role: i % 2 ? 'assistant' : 'user', content: `n${i}`, status: 'complete' }),
      );
    const stored = async (chatId: string) =>
      Number(
        (
          await db
            .selectFrom('messages')
            .select((eb) => eb.fn.countAll().as('n'))
            .where('chat_id', '=', chatId)
            .executeTakeFirstOrThrow()
        ).n,
      );

    it("writes in batches, other work running between them; the chat is its owner's only once every row is in", async () => {
      const chat = newChat({ id: 'imp', userId: 'u1', title: 'Imported' });
      let done = false;
      const writing = chats.insertImported(chat, rowsOf('imp', 40), 2).finally(() => (done = true));
      const seen: { owned: boolean; rows: number }[] = [];
      // Other work: a turn of the event loop each (SQLite's queries alone resolve without one).
      while (!done) {
        seen.push({ owned: !!(await chats.findOwned('imp', 'u1')), rows: await stored('imp') });
        await new Promise((resolve) => setImmediate(resolve));
      }
      await writing;
      expect(seen.some((s) => s.rows > 0 && s.rows < 40)).toBe(true); // batches interleaved with these reads
      expect(seen.filter((s) => s.owned).every((s) => s.rows === 40)).toBe(true);
      expect((await chats.list('u1')).map((c) => c.id)).toEqual(['imp']);
      expect((await messages.listByChat('imp')).map((m) => m.content)).toEqual(rowsOf('imp', 40).map((m) => m.content));
    });

    it('an import cut short (the server stopped) is removed by the next import after an hour', async () => {
      const hourAgo = new Date(Date.now() - 3_600_001).toISOString();
      await chats.insert({ ...newChat({ id: 'cut', userId: IMPORTING, title: 'Cut' }), updated_at: hourAgo }, rowsOf('cut', 3));
      await chats.insert(newChat({ id: 'running', userId: IMPORTING, title: 'Still being written' }), rowsOf('running', 1));
      await chats.insertImported(newChat({ id: 'next', userId: 'u1', title: 'Next' }), rowsOf('next', 1));
      expect(await chats.findById('cut')).toBeUndefined();
      expect(await stored('cut')).toBe(0);
      expect(await chats.findById('running')).toBeDefined();
    });

    it('a batch that fails takes the whole import with it: no chat, no rows', async () => {
      const rows = rowsOf('bad', 5);
      rows[3] = { ...rows[3], id: rows[0].id }; // the second batch repeats an id of the first
      expect(await refusal(chats.insertImported(newChat({ id: 'bad', userId: 'u1', title: 'Bad' }), rows, 2))).toMatch(UNIQUE);
      expect(await chats.findById('bad')).toBeUndefined();
      expect(await stored('bad')).toBe(0);
    });
  });

  it('keeps its data when the same database is opened again (a restart), and migrations run again harmlessly', async () => {
    await chats.create({ id: 'c', userId: 'u1', title: 'Survives', settings: { model: 'm' } });
    await messages.insert({ id: 'm', chat_id: 'c', role: 'user', content: 'hello', status: 'complete' });
    const migrations = async () =>
      (
        await db
          .selectFrom('kysely_migration' as never)
          .selectAll()
          .execute()
      ).length;
    const applied = await migrations();
    expect(applied).toBeGreaterThan(0);
    await db.destroy();

    db = await openDatabase(url);
    await migrate(db);
    const reopened = new ChatsRepository(db, new GroupCommit(db));
    expect(await reopened.findById('c')).toEqual(expect.objectContaining({ title: 'Survives', settings: { model: 'm' } }));
    expect((await new MessagesRepository(db, new GroupCommit(db)).listByChat('c')).map((m) => m.content)).toEqual(['hello']);
    expect(await migrations()).toBe(applied);
  });

  const sqliteOnly = usingPostgres() ? it.skip : it;

  sqliteOnly('creates the folder of the sqlite path when it is missing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'chats-repo-'));
    const nested = join(dir, 'not', 'there', 'yet', 'chat.db');
    expect(existsSync(join(dir, 'not'))).toBe(false);
    const other = await openDatabase(`sqlite:${nested}`);
    try {
      expect(existsSync(nested)).toBe(true);
      await new ChatsRepository(other, new GroupCommit(other)).create({ id: 'x', userId: 'u1', title: 'in a new folder' });
      expect((await new ChatsRepository(other, new GroupCommit(other)).list('u1')).map((c) => c.id)).toEqual(['x']);
    } finally {
      await other.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  sqliteOnly('refuses a DATABASE_URL of an unknown kind without showing its password', async () => {
    await expect(openDatabase('mysql://user:secret@host/db')).rejects.toThrow('mysql://user:***@host/db');
    await expect(openDatabase('mysql://user:secret@host/db')).rejects.not.toThrow('secret');
  });
});

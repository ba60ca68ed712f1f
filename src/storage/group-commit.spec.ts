import { Logger } from '@nestjs/common';
import { type CompiledQuery, type Kysely } from 'kysely';
import { usingPostgres } from '../../test/support/databases';
import { repositoriesOn, useTempDatabase } from '../../test/support/temp-database';
import { newChat, ChatsRepository } from './chats.repository';
import { sqliteConnectionOf } from './database.provider';
import { GroupCommit } from './group-commit';
import { newMessage, MessagesRepository } from './messages.repository';
import type { Database } from './schema';

describe(`GroupCommit (${usingPostgres() ? 'PostgreSQL' : 'SQLite file'})`, () => {
  const database = useTempDatabase();
  let db: Kysely<Database>;
  let chats: ChatsRepository;
  let messages: MessagesRepository;
  let group: GroupCommit;

  beforeAll(() => Logger.overrideLogger(false));
  beforeEach(async () => {
    db = database.db;
    // As StorageModule provides them: one GroupCommit per database, injected into its repositories.
    const module = await repositoriesOn(db);
    group = module.get(GroupCommit);
    chats = module.get(ChatsRepository);
    messages = module.get(MessagesRepository);
  });
  afterEach(() => jest.restoreAllMocks());

  const newTurn = (n: number) => {
    const chat = newChat({ id: `chat-${n}`, userId: 'u1', title: `turn ${n}` });
    const rows = [
      newMessage({ id: `user-${n}`, chat_id: chat.id, role: 'user', content: `question ${n}`, status: 'complete' }),
      newMessage({ id: `answer-${n}`, chat_id: chat.id, role: 'assistant', content: '', status: 'streaming' }),
    ];
    return chats.insert(chat, rows);
  };

  it('stores every write asked for in one turn of the event loop; each resolves once readable', async () => {
    const sqlite = sqliteConnectionOf(db);
    // SQLite: one transaction (one commit) for all four; PostgreSQL: one query (one round trip, one
    // implicit transaction) for all four.
    const transaction = sqlite ? jest.spyOn(sqlite, 'transaction') : jest.spyOn(db, 'executeQuery');
    await Promise.all([newTurn(1), newTurn(2), newTurn(3), chats.touch('chat-1')]);
    expect(transaction).toHaveBeenCalledTimes(1);
    expect((await messages.listByChat('chat-2')).map((m) => m.id)).toEqual(['user-2', 'answer-2']);
    expect((await chats.list('u1')).map((c) => c.id).sort()).toEqual(['chat-1', 'chat-2', 'chat-3']);
  });

  it('stores text exactly, whatever it holds (quotes, backslashes, placeholders, semicolons, emoji)', async () => {
    const text = "O'Reilly said \\ and \\\\n, $1 and $2; DROP TABLE messages; -- E'x' 🙂 \n\ttab";
    const chat = newChat({ id: 'chat-odd', userId: 'u1', title: text });
    const row = newMessage({ id: 'odd', chat_id: chat.id, role: 'user', content: text, status: 'complete' });
    await Promise.all([chats.insert(chat, [row]), newTurn(5)]);
    expect((await messages.findById('odd'))?.content).toBe(text);
    expect((await chats.list('u1')).find((c) => c.id === 'chat-odd')?.title).toBe(text);
  });

  it('a write that fails fails alone: the others of its batch are committed', async () => {
    await newTurn(1);
    const results = await Promise.allSettled([
      newTurn(2),
      newTurn(1), // the same chat id again: a primary-key violation
      messages.finish('answer-1', { content: 'done', reasoning: null, status: 'complete', seq: 3 }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((await messages.findById('answer-1'))?.content).toBe('done');
    expect((await messages.listByChat('chat-2')).map((m) => m.id)).toEqual(['user-2', 'answer-2']);
    // The failing insert left nothing half-written: chat-1 still has its two messages only.
    expect((await messages.listByChat('chat-1')).map((m) => m.id)).toEqual(['user-1', 'answer-1']);
  });

  it('a write whose second statement fails leaves none of its statements', async () => {
    const chat = newChat({ id: 'half', userId: 'u1', title: 'half' });
    const broken = newMessage({ id: 'm', chat_id: 'no-such-chat', role: 'user', content: 'x', status: 'complete' });
    // (better-sqlite3's SqliteError is not `instanceof Error` in a later Jest realm: no toThrow here.)
    await expect(
      chats.insert(chat, [broken]).then(
        () => 'stored',
        () => 'failed',
      ),
    ).resolves.toBe('failed');
    expect(await chats.findById('half')).toBeUndefined();
  });

  (usingPostgres() ? it : it.skip)(
    'PostgreSQL: consecutive one-row inserts of a batch go as one insert of their rows; nothing moves past another statement',
    async () => {
      await Promise.all([newTurn(1), newTurn(2)]);
      const query = jest.spyOn(db, 'executeQuery');
      const row = (n: number, chat: number) => newMessage({ id: `more-${n}`, chat_id: `chat-${chat}`, role: 'user', content: `it's ${n}`, status: 'complete' });
      await Promise.all([
        messages.insertMany([row(1, 1), row(2, 1)]),
        messages.insertMany([row(3, 2)]),
        chats.touch('chat-1'),
        messages.insertMany([row(4, 1)]),
        newTurn(3), // a chat insert, then its messages: they must follow it
      ]);
      expect(query).toHaveBeenCalledTimes(1);
      const text = (query.mock.calls[0][0] as CompiledQuery).sql;
      expect(text.match(/insert into "messages"/g)).toHaveLength(3); // 1+2+3, then 4, then turn 3's two
      expect(text.match(/insert into "chats"/g)).toHaveLength(1);
      expect(text.indexOf('insert into "chats"')).toBeLessThan(text.lastIndexOf('insert into "messages"'));
      expect((await messages.listByChat('chat-1')).map((m) => m.id)).toEqual(['user-1', 'answer-1', 'more-1', 'more-2', 'more-4']);
      expect((await messages.listByChat('chat-2')).map((m) => [m.id, m.content])).toEqual([
        ['user-2', 'question 2'],
        ['answer-2', ''],
        ['more-3', "it's 3"],
      ]);
      expect((await messages.listByChat('chat-3')).map((m) => m.id)).toEqual(['user-3', 'answer-3']);
    },
  );

  (usingPostgres() ? it.skip : it)('SQLite: runs a batch in the order asked; drain waits for what was asked before it', async () => {
    const done: string[] = [];
    void newTurn(8).then(() => done.push('turn'));
    // A touch of the chat just asked for: it finds the row only when run after the insert.
    void group.run([db.updateTable('chats').set({ title: 'renamed' }).where('id', '=', 'chat-8').compile()]).then(() => done.push('rename'));
    await group.drain();
    expect(done.sort()).toEqual(['rename', 'turn']);
    expect((await chats.findById('chat-8'))?.title).toBe('renamed');
  });

  (usingPostgres() ? it.skip : it)('SQLite: a batch waits for a Kysely transaction open on the connection, and does not join it', async () => {
    let release!: () => void;
    const held = db.transaction().execute(async (trx) => {
      await trx
        .insertInto('chats')
        .values({ ...newChat({ id: 'in-trx', userId: 'u1', title: 'kysely' }), settings: '{}' })
        .execute();
      await new Promise<void>((resolve) => (release = resolve));
      throw new Error('roll back');
    });
    const stored = newTurn(9);
    await new Promise((resolve) => setTimeout(resolve, 20));
    release();
    await expect(held).rejects.toThrow('roll back');
    await stored;
    expect(await chats.findById('in-trx')).toBeUndefined();
    expect((await messages.listByChat('chat-9')).map((m) => m.id)).toEqual(['user-9', 'answer-9']);
  });
});

import { Global, INestApplicationContext, Logger, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Kysely, sql } from 'kysely';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Environment, validateEnvironment } from '../config/environment';
import { ChatsRepository } from './chats.repository';
import { openDatabase } from './database.provider';
import { GroupCommit } from './group-commit';
import { newMessage, MessagesRepository } from './messages.repository';
import { Database } from './schema';
import { SEARCH_INDEX_INTERVAL_MS, StorageModule } from './storage.module';

const sqliteUrl = () => `sqlite:${join(mkdtempSync(join(tmpdir(), 'chat-search-')), 'chat.db')}`;

/** What the SQLite search index holds (rowid → indexed text) and what waits to be indexed. */
async function indexState(db: Kysely<Database>) {
  const indexed = await sql<{ message_id: string; content: string }>`SELECT message_id, content FROM messages_fts ORDER BY rowid`.execute(db);
  const pending = await sql<{ id: number }>`SELECT id FROM messages_fts_pending`.execute(db);
  return { indexed: indexed.rows.map((r) => [r.message_id, r.content]), pending: pending.rows.length };
}

describe('search index queue (SQLite)', () => {
  let db: Kysely<Database>;
  let messages: MessagesRepository;

  beforeAll(() => Logger.overrideLogger(false));
  beforeEach(async () => {
    db = await openDatabase(sqliteUrl());
    messages = new MessagesRepository(db, new GroupCommit(db));
    await new ChatsRepository(db, new GroupCommit(db)).create({ id: 'chat', userId: 'u1', title: 'T' });
  });
  afterEach(() => db.destroy());

  const streaming = (id: string) => messages.insert({ id, chat_id: 'chat', role: 'assistant', content: '', status: 'streaming' });

  it('a final message is queued, not indexed, inside its own commit; a snapshot queues nothing', async () => {
    await messages.insert({ id: 'u1', chat_id: 'chat', role: 'user', content: 'zebra question', status: 'complete' });
    await streaming('a1');
    await messages.snapshotMany([{ id: 'a1', content: 'partial zebra', reasoning: null, seq: 1 }]);
    expect(await indexState(db)).toEqual({ indexed: [], pending: 1 });
    await messages.finish('a1', { content: 'zebra answer', reasoning: null, status: 'complete', seq: 2 });
    expect(await indexState(db)).toEqual({ indexed: [], pending: 2 });
  });

  it('a search indexes the queue first: what just ended is found', async () => {
    await streaming('a1');
    await messages.finish('a1', { content: 'the okapi lives in forests', reasoning: null, status: 'complete', seq: 1 });
    const hits = await messages.search('u1', 'okapi');
    expect(hits.map((h) => h.message_id)).toEqual(['a1']);
    expect(await indexState(db)).toEqual({ indexed: [['a1', 'the okapi lives in forests']], pending: 0 });
  });

  it('indexes in batches; an answer re-queued (regenerated text) replaces its old index row', async () => {
    for (const id of ['m1', 'm2', 'm3']) await messages.insert({ id, chat_id: 'chat', role: 'user', content: `text ${id}`, status: 'complete' });
    expect(await messages.flushSearchIndex(2)).toBe(true);
    expect(await messages.flushSearchIndex(2)).toBe(false);
    expect(await messages.flushSearchIndex(2)).toBe(false);
    expect((await indexState(db)).indexed).toEqual([
      ['m1', 'text m1'],
      ['m2', 'text m2'],
      ['m3', 'text m3'],
    ]);
    await sql`UPDATE messages SET content = 'changed' WHERE id = 'm2'`.execute(db);
    await messages.flushSearchIndex();
    expect((await indexState(db)).indexed).toEqual([
      ['m1', 'text m1'],
      ['m2', 'changed'],
      ['m3', 'text m3'],
    ]);
  });

  it('chat titles go through their own queue: a new chat and a rename are found by search, a deleted chat leaves both', async () => {
    const chats = new ChatsRepository(db, new GroupCommit(db));
    const titles = async () => (await sql<{ title: string }>`SELECT title FROM chats_fts ORDER BY rowid`.execute(db)).rows.map((r) => r.title);
    const queued = async () => (await sql`SELECT id FROM chats_fts_pending`.execute(db)).rows.length;
    await chats.create({ id: 'c2', userId: 'u1', title: 'Flamingo facts' });
    expect(await queued()).toBe(2); // 'chat' of beforeEach and this one
    expect(await titles()).toEqual([]);
    expect((await messages.search('u1', 'flamingo')).map((h) => [h.chat_id, h.message_id])).toEqual([['c2', null]]);
    expect(await queued()).toBe(0);
    await chats.update('c2', { title: 'Heron facts' });
    expect(await messages.search('u1', 'flamingo')).toEqual([]);
    expect((await messages.search('u1', 'heron')).map((h) => h.chat_id)).toEqual(['c2']);
    await chats.update('c2', { title: 'Ibis facts' });
    await chats.delete('c2');
    expect(await queued()).toBe(0);
    expect(await titles()).toEqual(['T']);
  });

  it('a deleted message leaves the index and the queue', async () => {
    await messages.insert({ id: 'm1', chat_id: 'chat', role: 'user', content: 'indexed', status: 'complete' });
    await messages.flushSearchIndex();
    await messages.insert({ id: 'm2', chat_id: 'chat', role: 'user', content: 'queued', status: 'complete' });
    await new ChatsRepository(db, new GroupCommit(db)).delete('chat');
    expect(await indexState(db)).toEqual({ indexed: [], pending: 0 });
  });

  it('after the rows were renumbered (a restore from .dump does it; VACUUM may), the start-up check rebuilds the index', async () => {
    const chats = new ChatsRepository(db, new GroupCommit(db));
    for (let i = 1; i <= 6; i++) await messages.insert({ id: `m${i}`, chat_id: 'chat', role: 'user', content: `animal${i} text`, status: 'complete' });
    await chats.create({ id: 'early', userId: 'u1', title: 'Early chat' });
    await chats.create({ id: 'late', userId: 'u1', title: 'Walrus notes' });
    await messages.flushSearchIndex();
    expect(await messages.repairSearchIndex()).toEqual([]); // nothing to repair
    await sql`DELETE FROM messages WHERE id IN ('m1', 'm2')`.execute(db);
    await chats.delete('early');
    // What a renumbering does to uuid-keyed tables (their rowid is not their key)
    await sql`UPDATE messages SET rowid = rowid + 100`.execute(db);
    await sql`UPDATE chats SET rowid = rowid + 100`.execute(db);
    // The index rows now sit at rowids no row has: a delete or an edit would miss them
    expect((await sql<{ n: number }>`SELECT count(*) AS n FROM messages_fts f JOIN messages m ON m.rowid = f.rowid`.execute(db)).rows[0].n).toBe(0);
    expect(await messages.repairSearchIndex()).toEqual(['messages_fts', 'chats_fts']);
    expect((await indexState(db)).indexed).toEqual([
      ['m3', 'animal3 text'],
      ['m4', 'animal4 text'],
      ['m5', 'animal5 text'],
      ['m6', 'animal6 text'],
    ]);
    expect((await messages.search('u1', 'animal5')).map((h) => h.message_id)).toEqual(['m5']);
    expect((await messages.search('u1', 'walrus')).map((h) => h.chat_id)).toEqual(['late']);
    await sql`DELETE FROM messages WHERE id = 'm4'`.execute(db);
    expect((await indexState(db)).indexed.map(([id]) => id)).toEqual(['m3', 'm5', 'm6']);
  });
});

describe('StorageModule indexes the queue on its own (SQLite)', () => {
  /** StorageModule as the app has it (its Environment global), started: its lifecycle hooks run. */
  async function boot(url: string): Promise<INestApplicationContext> {
    @Global()
    @Module({ providers: [{ provide: Environment, useValue: validateEnvironment({ DATABASE_URL: url }) }], exports: [Environment] })
    class EnvModule {}
    const module = await Test.createTestingModule({ imports: [EnvModule, StorageModule] }).compile();
    return module.init();
  }

  it('every SEARCH_INDEX_INTERVAL_MS, and what is left at shutdown', async () => {
    const url = sqliteUrl();
    const app = await boot(url);
    const db = app.get<Kysely<Database>>(Kysely);
    const repo = app.get(MessagesRepository);
    await app.get(ChatsRepository).create({ id: 'chat', userId: 'u1', title: 'T' });
    await repo.insertMany([newMessage({ id: 'm1', chat_id: 'chat', role: 'user', content: 'first', status: 'complete' })]);
    expect((await indexState(db)).pending).toBe(1);
    const deadline = Date.now() + 20 * SEARCH_INDEX_INTERVAL_MS;
    while ((await indexState(db)).pending > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(await indexState(db)).toEqual({ indexed: [['m1', 'first']], pending: 0 });

    await repo.insertMany([newMessage({ id: 'm2', chat_id: 'chat', role: 'user', content: 'second', status: 'complete' })]);
    await app.close();
    const reopened = await openDatabase(url);
    try {
      expect(await indexState(reopened)).toEqual({
        indexed: [
          ['m1', 'first'],
          ['m2', 'second'],
        ],
        pending: 0,
      });
    } finally {
      await reopened.destroy();
    }
  });
});

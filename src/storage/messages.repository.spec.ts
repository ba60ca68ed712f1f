import { Logger } from '@nestjs/common';
import { type Kysely } from 'kysely';
import { usingPostgres } from '../../test/support/databases';
import { repositoriesOn, useTempDatabase } from '../../test/support/temp-database';
import { ChatsRepository } from './chats.repository';
import { sqliteConnectionOf } from './database.provider';
import { type Message, MessagesRepository, newMessage } from './messages.repository';
import type { Database } from './schema';

/** "Medium" tests: the real repository on a real database (a SQLite file, or PostgreSQL in the postgres project). */
describe(`MessagesRepository (${usingPostgres() ? 'PostgreSQL' : 'SQLite file'})`, () => {
  const database = useTempDatabase();
  let db: Kysely<Database>;
  let messages: MessagesRepository;
  let chats: ChatsRepository;

  beforeAll(() => Logger.overrideLogger(false));
  beforeEach(async () => {
    db = database.db;
    const module = await repositoriesOn(db);
    messages = module.get(MessagesRepository);
    chats = module.get(ChatsRepository);
    await chats.create({ id: 'chat', userId: 'u1', title: 'T' });
    await chats.create({ id: 'other', userId: 'u2', title: 'O' });
  });
  afterEach(() => jest.restoreAllMocks());

  const streaming = (id: string, chatId = 'chat') =>
    messages.insert({ id, chat_id: chatId, role: 'assistant', content: '', status: 'streaming', model: 'm', request_id: 'req' });

  it('insert stores a full row with defaults and findById reads it back', async () => {
    const row = await messages.insert({ id: 'u1', chat_id: 'chat', role: 'user', content: 'Hello', status: 'complete' });
    const expected: Message = {
      id: 'u1',
      chat_id: 'chat',
      role: 'user',
      content: 'Hello',
      reasoning: null,
      status: 'complete',
      model: null,
      usage: null,
      error_code: null,
      finish_reason: null,
      request_id: null,
      seq: 0,
      created_at: row.created_at,
      updated_at: row.created_at,
      replaced_by: null,
      previous_versions: [],
      attachments: [],
      instance_id: null,
      omitted_turns: null,
    };
    expect(row).toEqual(expected);
    expect(await messages.findById('u1')).toEqual(expected);
    expect(await messages.findById('nope')).toBeUndefined();
  });

  it('insert keeps model and request_id of an assistant message', async () => {
    await streaming('a1');
    expect(await messages.findById('a1')).toEqual(
      expect.objectContaining({ role: 'assistant', status: 'streaming', model: 'm', request_id: 'req', content: '', seq: 0 }),
    );
  });

  it('findOwned finds a message only for the owner of its chat', async () => {
    await messages.insert({ id: 'mine', chat_id: 'chat', role: 'user', content: 'q', status: 'complete' });
    expect(await messages.findOwned('mine', 'u1')).toEqual(await messages.findById('mine'));
    expect(await messages.findOwned('mine', 'u2')).toBeUndefined();
    expect(await messages.findOwned('missing', 'u1')).toBeUndefined();
  });

  it('lists a chat oldest first, even when every row is written in the same millisecond', async () => {
    jest.spyOn(Date, 'now').mockReturnValue(Date.parse('2030-01-01T00:00:00.000Z'));
    // ids in no alphabetical order either way, so an order by id would show
    const ids = ['m', 'z', 'a', 'q', 'b', 'y'];
    for (const id of ids) await messages.insert({ id, chat_id: 'chat', role: 'user', content: id, status: 'complete' });
    await messages.insert({ id: 'elsewhere', chat_id: 'other', role: 'user', content: 'no', status: 'complete' });

    const rows = await messages.listByChat('chat');
    expect(rows.map((r) => r.id)).toEqual(ids);
    expect(new Set(rows.map((r) => r.created_at)).size).toBe(ids.length);
    expect(await messages.listByChat('nobody')).toEqual([]);
  });

  it('listContext reads the main line as listByChat does, with only what a model request needs', async () => {
    await messages.insert({ id: 'q', chat_id: 'chat', role: 'user', content: 'q', status: 'complete', attachments: ['f1'] });
    await messages.insert({ id: 'old', chat_id: 'chat', role: 'assistant', content: 'first try', status: 'complete' });
    await messages.insertMany([newMessage({ id: 'new', chat_id: 'chat', role: 'assistant', content: '', status: 'streaming', previous_versions: ['old'] })]);
    await messages.markReplaced(['old'], 'new');
    await messages.finish('new', { content: 'second', reasoning: 'long thoughts', status: 'complete', seq: 2, usage: { total_tokens: 9 } });
    expect(await messages.listContext('chat')).toEqual([
      { id: 'q', role: 'user', content: 'q', status: 'complete', attachments: ['f1'] },
      { id: 'new', role: 'assistant', content: 'second', status: 'complete', attachments: [] },
    ]);
    expect((await messages.listByChat('chat')).map((m) => m.id)).toEqual(['q', 'new']);
    expect(await messages.listContext('nobody')).toEqual([]);
  });

  it('insertMany stores rows made by newMessage in one statement, in the order they were made', async () => {
    jest.spyOn(Date, 'now').mockReturnValue(Date.parse('2030-01-01T00:00:00.000Z'));
    const user = newMessage({ id: 'z-user', chat_id: 'chat', role: 'user', content: 'Q', status: 'complete', attachments: ['f1'] });
    const answer = newMessage({ id: 'a-answer', chat_id: 'chat', role: 'assistant', content: '', status: 'streaming', model: 'm' });
    await messages.insertMany([user, answer]);
    expect(await messages.listByChat('chat')).toEqual([user, answer]);
    expect(user.attachments).toEqual(['f1']);
    await expect(messages.insertMany([])).resolves.toBeUndefined();
  });

  it('stores how many older turns an answer left out, and reads it back through every read', async () => {
    await messages.insert({ id: 'q', chat_id: 'chat', role: 'user', content: 'q', status: 'complete' });
    await messages.insert({ id: 'none', chat_id: 'chat', role: 'assistant', content: 'a', status: 'complete', omitted_turns: 0 });
    await messages.insertMany([newMessage({ id: 'some', chat_id: 'chat', role: 'assistant', content: '', status: 'streaming', omitted_turns: 3 })]);
    await messages.finish('some', { content: 'done', reasoning: null, status: 'complete', seq: 1 });

    expect((await messages.findById('some'))?.omitted_turns).toBe(3);
    expect((await messages.findOwned('some', 'u1'))?.omitted_turns).toBe(3);
    expect((await messages.listByChat('chat')).map((m) => [m.id, m.omitted_turns])).toEqual([
      ['q', null],
      ['none', 0],
      ['some', 3],
    ]);
    expect((await messages.listAllByChat('chat')).map((m) => m.omitted_turns)).toEqual([null, 0, 3]);
  });

  it("a replaced answer leaves the chat's main line but stays in the full list; lists are stored as JSON and read back as arrays", async () => {
    await messages.insert({ id: 'q', chat_id: 'chat', role: 'user', content: 'q', status: 'complete', attachments: ['f1', 'f2'] });
    await messages.insert({ id: 'old', chat_id: 'chat', role: 'assistant', content: 'first try', status: 'complete' });
    await messages.insert({ id: 'new', chat_id: 'chat', role: 'assistant', content: '', status: 'streaming', previous_versions: ['old'] });
    await messages.markReplaced(['old'], 'new');

    expect((await messages.listByChat('chat')).map((m) => m.id)).toEqual(['q', 'new']);
    expect((await messages.listAllByChat('chat')).map((m) => m.id)).toEqual(['q', 'old', 'new']);
    expect((await messages.findById('old'))?.replaced_by).toBe('new');
    expect((await messages.findById('new'))?.previous_versions).toEqual(['old']);
    expect((await messages.findById('q'))?.attachments).toEqual(['f1', 'f2']);
    const stored = await db.selectFrom('messages').select(['id', 'previous_versions', 'attachments']).orderBy('id').execute();
    expect(stored).toEqual([
      { id: 'new', previous_versions: '["old"]', attachments: null },
      { id: 'old', previous_versions: null, attachments: null },
      { id: 'q', previous_versions: null, attachments: '["f1","f2"]' },
    ]);
  });

  it('snapshot writes text, reasoning and seq of a streaming message', async () => {
    const before = await streaming('a1');
    await messages.snapshotMany([{ id: 'a1', content: 'partial', reasoning: 'thinking', seq: 7 }]);
    const row = await messages.findById('a1');
    expect(row).toEqual(expect.objectContaining({ content: 'partial', reasoning: 'thinking', seq: 7, status: 'streaming' }));
    expect(row!.updated_at > before.updated_at).toBe(true);
  });

  it('snapshot leaves a message that is no longer streaming untouched', async () => {
    await streaming('a1');
    await messages.finish('a1', { content: 'final', reasoning: null, status: 'stopped', seq: 3 });
    const finished = await messages.findById('a1');
    await messages.snapshotMany([{ id: 'a1', content: 'late snapshot', reasoning: 'late', seq: 9 }]);
    expect(await messages.findById('a1')).toEqual(finished);
  });

  it('search finds an answer once it ended, not its snapshots while it streams (they are not indexed)', async () => {
    await streaming('a1');
    await messages.snapshotMany([{ id: 'a1', content: 'the okapi so far', reasoning: null, seq: 1 }]);
    expect(await messages.search('u1', 'okapi')).toEqual([]);
    await messages.finish('a1', { content: 'the okapi lives in forests', reasoning: null, status: 'complete', seq: 2 });
    expect((await messages.search('u1', 'okapi')).map((hit) => hit.message_id)).toEqual(['a1']);
    await streaming('a2');
    await messages.finish('a2', { content: 'an okapi cut short', reasoning: null, status: 'interrupted', seq: 1 });
    expect((await messages.search('u1', 'okapi')).map((hit) => hit.message_id).sort()).toEqual(['a1', 'a2']);
  });

  it('snapshotMany writes several streaming messages in one transaction and skips ended ones', async () => {
    await streaming('a1');
    await streaming('a2');
    await streaming('a3');
    await messages.finish('a2', { content: 'final', reasoning: null, status: 'complete', seq: 5 });
    const ended = await messages.findById('a2');
    const sqlite = sqliteConnectionOf(db);
    // PostgreSQL: one query, which the server runs as one implicit transaction (GroupCommit).
    const transaction = sqlite ? jest.spyOn(sqlite, 'transaction') : jest.spyOn(db, 'executeQuery');
    await messages.snapshotMany([
      { id: 'a1', content: 'one', reasoning: null, seq: 1 },
      { id: 'a2', content: 'late', reasoning: null, seq: 9 },
      { id: 'a3', content: 'three', reasoning: 'r', seq: 3 },
    ]);
    expect(transaction).toHaveBeenCalledTimes(1);
    expect(await messages.findById('a1')).toEqual(expect.objectContaining({ content: 'one', seq: 1, status: 'streaming' }));
    expect(await messages.findById('a2')).toEqual(ended);
    expect(await messages.findById('a3')).toEqual(expect.objectContaining({ content: 'three', reasoning: 'r', seq: 3 }));
    await expect(messages.snapshotMany([])).resolves.toBeUndefined();
  });

  it('finish stores the final text, status, seq, usage JSON, error code and finish_reason', async () => {
    await streaming('a1');
    await messages.snapshotMany([{ id: 'a1', content: 'par', reasoning: null, seq: 1 }]);
    const usage = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15, reasoning_tokens: 2 };
    await messages.finish('a1', { content: 'partial answer', reasoning: 'why', status: 'complete', seq: 4, usage, finish_reason: 'length' });
    const row = await messages.findById('a1');
    expect(row).toEqual(
      expect.objectContaining({ content: 'partial answer', reasoning: 'why', status: 'complete', seq: 4, error_code: null, finish_reason: 'length' }),
    );
    expect(row!.usage).toEqual(usage);
    const stored = await db.selectFrom('messages').select('usage').where('id', '=', 'a1').executeTakeFirstOrThrow();
    expect(stored.usage).toBe(JSON.stringify(usage));

    await streaming('a2');
    await messages.finish('a2', { content: '', reasoning: null, status: 'error', seq: 0, error_code: 'upstream_auth' });
    expect(await messages.findById('a2')).toEqual(
      expect.objectContaining({ content: '', reasoning: null, status: 'error', seq: 0, usage: null, error_code: 'upstream_auth', finish_reason: null }),
    );
  });

  it('interruptAllStreaming marks only streaming rows interrupted, keeps their text, and returns the count', async () => {
    await streaming('s1');
    await streaming('s2', 'other');
    await messages.snapshotMany([{ id: 's1', content: 'kept text', reasoning: null, seq: 2 }]);
    await streaming('done');
    await messages.finish('done', { content: 'ok', reasoning: null, status: 'complete', seq: 1 });
    await messages.insert({ id: 'u', chat_id: 'chat', role: 'user', content: 'q', status: 'complete' });
    const untouched = [await messages.findById('done'), await messages.findById('u')];

    expect(await messages.interruptAllStreaming()).toBe(2);

    expect(await messages.findById('s1')).toEqual(expect.objectContaining({ status: 'interrupted', content: 'kept text', seq: 2 }));
    expect((await messages.findById('s2'))?.status).toBe('interrupted');
    expect([await messages.findById('done'), await messages.findById('u')]).toEqual(untouched);
    expect(await messages.interruptAllStreaming()).toBe(0);
  });
});

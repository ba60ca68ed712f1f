import { Logger } from '@nestjs/common';
import { sqliteConnectionOf } from './database.provider';
import { usingPostgres } from '../../test/support/databases';
import { repositoriesOn, useTempDatabase } from '../../test/support/temp-database';
import { ChatsRepository } from './chats.repository';
import { MessagesRepository } from './messages.repository';

/**
 * `ChatsRepository.findOwnedWithContext`: a turn's one read before its model request (issue 22). It
 * must answer exactly what `findOwned` and then `listContext` answered, and nothing for a chat the
 * user does not own. The real repository on a real database (SQLite file, or PostgreSQL).
 */
describe(`ChatsRepository.findOwnedWithContext (${usingPostgres() ? 'PostgreSQL' : 'SQLite file'})`, () => {
  const database = useTempDatabase();
  let chats: ChatsRepository;
  let messages: MessagesRepository;

  beforeAll(() => Logger.overrideLogger(false));
  beforeEach(async () => {
    const module = await repositoriesOn(database.db);
    chats = module.get(ChatsRepository);
    messages = module.get(MessagesRepository);
  });

  const add = (id: string, role: 'user' | 'assistant', fields: { chat_id?: string; attachments?: string[]; status?: 'complete' | 'streaming' } = {}) =>
    messages.insert({
      id,
      chat_id: fields.chat_id ?? 'chat',
      role,
      content: `text of ${id}`,
      status: fields.status ?? 'complete',
      attachments: fields.attachments,
    });

  /** What the two reads it replaces answer. */
  const twoReads = async (id: string, userId: string) => {
    const chat = await chats.findOwned(id, userId);
    return chat && { chat, context: await messages.listContext(id) };
  };

  it('answers the chat and its current line as findOwned and listContext do, edits and regenerates left out', async () => {
    await chats.create({ id: 'chat', userId: 'u1', title: 'T', settings: { model: 'm1', temperature: 0.5, system_prompt: 'Be brief' } });
    await chats.create({ id: 'other', userId: 'u1', title: 'O' });
    await add('q1', 'user', { attachments: ['f1', 'f2'] });
    await add('a1', 'assistant');
    await add('a1b', 'assistant');
    await messages.markReplaced(['a1'], 'a1b');
    await add('x', 'user', { chat_id: 'other' });
    await add('q2', 'user');
    await add('a2', 'assistant', { status: 'streaming' });

    const owned = await chats.findOwnedWithContext('chat', 'u1');
    expect(owned).toEqual(await twoReads('chat', 'u1'));
    expect(owned!.chat).toMatchObject({ id: 'chat', user_id: 'u1', title: 'T', settings: { model: 'm1', temperature: 0.5, system_prompt: 'Be brief' } });
    expect(owned!.context).toEqual([
      { id: 'q1', role: 'user', content: 'text of q1', status: 'complete', attachments: ['f1', 'f2'] },
      { id: 'a1b', role: 'assistant', content: 'text of a1b', status: 'complete', attachments: [] },
      { id: 'q2', role: 'user', content: 'text of q2', status: 'complete', attachments: [] },
      { id: 'a2', role: 'assistant', content: 'text of a2', status: 'streaming', attachments: [] },
    ]);

    // An edit of q2: q2 and a2 leave the current line.
    await add('e2', 'user');
    await messages.markReplaced(['q2', 'a2'], 'e2');
    const edited = await chats.findOwnedWithContext('chat', 'u1');
    expect(edited).toEqual(await twoReads('chat', 'u1'));
    expect(edited!.context.map((m) => m.id)).toEqual(['q1', 'a1b', 'e2']);
  });

  it('a chat without messages: the chat, an empty context', async () => {
    await chats.create({ id: 'empty', userId: 'u1', title: 'E' });
    const owned = await chats.findOwnedWithContext('empty', 'u1');
    expect(owned).toEqual(await twoReads('empty', 'u1'));
    expect(owned!.context).toEqual([]);
  });

  it("another user's chat, or a missing one, gives nothing at all", async () => {
    await chats.create({ id: 'chat', userId: 'u1', title: 'T' });
    await add('q1', 'user');
    expect(await chats.findOwnedWithContext('chat', 'u2')).toBeUndefined();
    expect(await chats.findOwnedWithContext('missing', 'u1')).toBeUndefined();
    // The same statement, bound again (compiled once): the owner's call still finds it.
    expect((await chats.findOwnedWithContext('chat', 'u1'))!.context.map((m) => m.id)).toEqual(['q1']);
  });

  it('reads asked for together (PostgreSQL: one statement) each answer as alone: owned, empty, not owned, missing, twice', async () => {
    await chats.create({ id: 'chat', userId: 'u1', title: 'T', settings: { system_prompt: 'Be brief' } });
    await chats.create({ id: 'empty', userId: 'u1', title: 'E', settings: { model: 'm2' } });
    await chats.create({ id: 'theirs', userId: 'u2', title: 'U2' });
    await add('q1', 'user');
    await add('a1', 'assistant');
    await add('t1', 'user', { chat_id: 'theirs' });
    const asked: Array<[string, string]> = [
      ['chat', 'u1'],
      ['empty', 'u1'],
      ['theirs', 'u1'],
      ['missing', 'u1'],
      ['theirs', 'u2'],
      ['chat', 'u1'],
    ];
    const alone = [];
    for (const [id, userId] of asked) alone.push(await twoReads(id, userId));
    const statements = sqliteConnectionOf(database.db) ? undefined : jest.spyOn(database.db, 'executeQuery');
    const together = await Promise.all(asked.map(([id, userId]) => chats.findOwnedWithContext(id, userId)));
    expect(together).toEqual(alone);
    expect(together.map((owned) => owned?.context.map((m) => m.id))).toEqual([['q1', 'a1'], [], undefined, undefined, ['t1'], ['q1', 'a1']]);
    expect(together[1]!.chat.settings).toEqual({ model: 'm2' });
    if (statements) expect(statements).toHaveBeenCalledTimes(1);
  });
});

import { Logger } from '@nestjs/common';
import { usingPostgres } from '../../test/support/databases';
import { repositoriesOn, useTempDatabase } from '../../test/support/temp-database';
import { ChatsRepository } from './chats.repository';
import { MessagesRepository } from './messages.repository';

/**
 * An edit's branches as stored (issue 20): the edited user message and every message after it are
 * marked replaced by the new user message; `listBranchAfter` reads an edited message's branch back,
 * `listReplaced` everything off the current line. The real repository on a real database.
 */
describe(`MessagesRepository: edited branches (${usingPostgres() ? 'PostgreSQL' : 'SQLite file'})`, () => {
  const database = useTempDatabase();
  let messages: MessagesRepository;

  beforeAll(() => Logger.overrideLogger(false));
  beforeEach(async () => {
    const module = await repositoriesOn(database.db);
    messages = module.get(MessagesRepository);
    await module.get(ChatsRepository).create({ id: 'chat', userId: 'u1', title: 'T' });
    await module.get(ChatsRepository).create({ id: 'other', userId: 'u1', title: 'O' });
  });

  const add = (id: string, role: 'user' | 'assistant', fields: { previous_versions?: string[]; chat_id?: string } = {}) =>
    messages.insert({ id, chat_id: fields.chat_id ?? 'chat', role, content: id, status: 'complete', previous_versions: fields.previous_versions });

  it('an edited branch leaves the current line; its messages read back in order after the edited one, twice over', async () => {
    // q1 a1 (a1 regenerated as a1b) q2 a2, then q1 edited to e1 (answer b1), then e1 edited to e2.
    await add('q1', 'user');
    await add('a1', 'assistant');
    await add('a1b', 'assistant', { previous_versions: ['a1'] });
    await messages.markReplaced(['a1'], 'a1b');
    await add('q2', 'user');
    await add('a2', 'assistant');
    await add('x', 'user', { chat_id: 'other' });
    await add('e1', 'user', { previous_versions: ['q1'] });
    await add('b1', 'assistant');
    await messages.markReplaced(['q1', 'a1b', 'q2', 'a2'], 'e1');
    expect((await messages.listByChat('chat')).map((m) => m.id)).toEqual(['e1', 'b1']);
    expect((await messages.listContext('chat')).map((m) => m.id)).toEqual(['e1', 'b1']);

    const q1 = (await messages.findById('q1'))!;
    // The branch as it read when q1 was edited: a1 (replaced by a regenerate before) stays out.
    expect((await messages.listBranchAfter(q1)).map((m) => m.id)).toEqual(['a1b', 'q2', 'a2']);
    // Not an edited user message: nothing.
    expect(await messages.listBranchAfter((await messages.findById('e1'))!)).toEqual([]);
    expect(await messages.listBranchAfter((await messages.findById('a2'))!)).toEqual([]);

    await add('e2', 'user', { previous_versions: ['q1', 'e1'] });
    await messages.markReplaced(['e1', 'b1'], 'e2');
    expect((await messages.listByChat('chat')).map((m) => m.id)).toEqual(['e2']);
    expect((await messages.listBranchAfter((await messages.findById('e1'))!)).map((m) => m.id)).toEqual(['b1']);
    expect((await messages.listBranchAfter((await messages.findById('q1'))!)).map((m) => m.id)).toEqual(['a1b', 'q2', 'a2']);

    expect((await messages.listReplaced('chat')).map((m) => [m.id, m.replaced_by])).toEqual([
      ['q1', 'e1'],
      ['a1', 'a1b'],
      ['a1b', 'e1'],
      ['q2', 'e1'],
      ['a2', 'e1'],
      ['e1', 'e2'],
      ['b1', 'e2'],
    ]);
    expect(await messages.listReplaced('other')).toEqual([]);
  });
});

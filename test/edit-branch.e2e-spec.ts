/**
 * Edit makes a branch (issue 20): `user_message` with `edit_of` takes the edited user message's
 * place; the edited message and everything after it stay readable as its previous version, the
 * model's context follows only the current branch, export keeps every version, search and share
 * see the current branch. Real server (accounts), FakeDeepSeek as the model; SQLite and PostgreSQL.
 */
import request from 'supertest';
import { FakeDeepSeek } from './fakes/deepseek.fake';
import { type RunningApp, startApp } from './support/app';
import { type AnyFrame, WsTestClient } from './support/ws-client';

describe('edit a sent user message as a new branch (e2e)', () => {
  let fake: FakeDeepSeek;
  let server: RunningApp;
  let alice: string;
  let bob: string;
  let ws: WsTestClient;

  const cookieOf = (setCookie: string | string[] | undefined) => String([setCookie].flat()[0]).split(';')[0];
  const signup = async (username: string) =>
    cookieOf((await request(server.url).post('/auth/signup').send({ username, password: 'correct horse battery' }).expect(201)).headers['set-cookie']);
  const get = (path: string, cookie = alice) => request(server.url).get(path).set('Cookie', cookie);

  beforeAll(async () => {
    fake = await FakeDeepSeek.start();
    // Each answer names the question it answers: "answer to <the newest user message>".
    fake.setDefault((body: { messages: { role: string; content: string }[] }) => ({
      kind: 'stream',
      content: [`answer to ${body.messages[body.messages.length - 1].content}`],
    }));
    server = await startApp({ AUTH_MODE: 'local', DEEPSEEK_BASE_URL: fake.baseUrl, DEEPSEEK_API_KEY: 'test-key' });
    alice = await signup('alice');
    bob = await signup('bob');
    ws = await WsTestClient.connect(server.wsUrl, { headers: { cookie: alice } });
  });
  afterAll(async () => {
    ws?.close();
    await server?.close();
    await fake?.close();
  });

  let n = 0;
  /** A turn over the socket; its frames up to the end (or the refusal). */
  async function turn(frame: Record<string, unknown>, on = ws) {
    const id = `t${++n}`;
    on.send({ type: 'user_message', id, ...frame });
    const frames = await on.collect((f) => f.id === id && (f.type === 'agent_response_end' || f.type === 'error'));
    const find = (type: string) => frames.find((f) => f.type === type && f.id === id) as AnyFrame;
    return { frames, user: find('user_message'), start: find('agent_response_start'), end: find('agent_response_end'), error: find('error') };
  }
  /** The model request of the newest turn: its messages as role/content pairs. */
  const lastContext = () =>
    (fake.requests[fake.requests.length - 1].body.messages as { role: string; content: string }[]).map((m) => `${m.role}: ${m.content}`);
  const listing = async (chatId: string) =>
    (await get(`/api/chats/${chatId}`).expect(200)).body.messages as { id: string; role: string; content: string; previous_versions?: string[] }[];

  /** A chat of `questions`, each answered. */
  async function chatOf(...questions: string[]) {
    const turns = [await turn({ content: questions[0] })];
    const chatId = turns[0].end.chat_id as string;
    for (const q of questions.slice(1)) turns.push(await turn({ content: q, chat_id: chatId }));
    return { chatId, turns };
  }

  it('the edited message and what followed it become the previous version; the answer and later context follow the new branch', async () => {
    const { chatId, turns } = await chatOf('alpha question', 'beta question');
    const [q1, a1, q2, a2] = [turns[0].user.message_id, turns[0].end.message_id, turns[1].user.message_id, turns[1].end.message_id];

    const edit = await turn({ content: 'gamma question', chat_id: chatId, edit_of: q1 });
    expect(edit.error).toBeUndefined();
    // The new user message says which one it replaced; its answer streams after it.
    expect(edit.user).toMatchObject({ chat_id: chatId, content: 'gamma question', previous_versions: [q1] });
    expect(edit.end).toMatchObject({ status: 'complete', content: 'answer to gamma question' });
    expect(edit.start.previous_versions).toBeUndefined();
    // The model saw the edited text alone: nothing of the old branch.
    expect(lastContext()).toEqual(['user: gamma question']);

    const now = await listing(chatId);
    expect(now.map((m) => m.content)).toEqual(['gamma question', 'answer to gamma question']);
    expect(now[0]).toMatchObject({ id: edit.user.message_id, previous_versions: [q1] });
    expect(now[1].previous_versions).toBeUndefined();

    // The previous version: the edited text and everything that followed it, as it was.
    const old = (await get(`/api/messages/${q1}`).expect(200)).body;
    expect(old).toMatchObject({ id: q1, role: 'user', content: 'alpha question', replaced_by: edit.user.message_id, chat_id: chatId });
    expect(old.following.map((m: { id: string; content: string }) => [m.id, m.content])).toEqual([
      [a1, 'answer to alpha question'],
      [q2, 'beta question'],
      [a2, 'answer to beta question'],
    ]);
    // A current message has no `following`; an answer of the old branch reads as before.
    expect((await get(`/api/messages/${edit.user.message_id}`).expect(200)).body.following).toBeUndefined();
    expect((await get(`/api/messages/${a2}`).expect(200)).body).toMatchObject({ content: 'answer to beta question', replaced_by: edit.user.message_id });

    // The next turn's context is the current branch only.
    await turn({ content: 'delta question', chat_id: chatId });
    expect(lastContext()).toEqual(['user: gamma question', 'assistant: answer to gamma question', 'user: delta question']);

    // Edited again: both earlier versions stay, each with its own branch.
    const again = await turn({ content: 'epsilon question', chat_id: chatId, edit_of: edit.user.message_id });
    expect(again.user.previous_versions).toEqual([q1, edit.user.message_id]);
    expect(lastContext()).toEqual(['user: epsilon question']);
    expect((await listing(chatId)).map((m) => m.content)).toEqual(['epsilon question', 'answer to epsilon question']);
    const second = (await get(`/api/messages/${edit.user.message_id}`).expect(200)).body;
    expect(second.following.map((m: { content: string }) => m.content)).toEqual(['answer to gamma question', 'delta question', 'answer to delta question']);
    const first = (await get(`/api/messages/${q1}`).expect(200)).body;
    expect(first.following.map((m: { id: string }) => m.id)).toEqual([a1, q2, a2]);

    // After a reload of the page, the stored user message carries its versions for the switcher.
    const page = await get(`/chat/${chatId}`).expect(200);
    expect(page.text).toContain(`data-previous-versions="${q1} ${edit.user.message_id} "`);

    // Search finds the current branch, not the versions it replaced.
    const search = async (q: string) => (await get(`/api/search?q=${q}`).expect(200)).body.results.filter((r: { chat_id: string }) => r.chat_id === chatId);
    expect(await search('epsilon')).toHaveLength(2);
    expect(await search('beta')).toEqual([]);
    expect(await search('gamma')).toEqual([]);

    // Export: JSON keeps every version; Markdown and an import are the chat as it reads now.
    const exported = JSON.parse((await get(`/api/chats/${chatId}/export?format=json`).expect(200)).text);
    expect(exported.messages.map((m: { content: string }) => m.content)).toEqual(['epsilon question', 'answer to epsilon question']);
    expect(exported.messages[0].previous_versions).toEqual([q1, edit.user.message_id]);
    expect(exported.replaced_messages.map((m: { content: string; replaced_by: string }) => [m.content, m.replaced_by])).toEqual([
      ['alpha question', edit.user.message_id],
      ['answer to alpha question', edit.user.message_id],
      ['beta question', edit.user.message_id],
      ['answer to beta question', edit.user.message_id],
      ['gamma question', again.user.message_id],
      ['answer to gamma question', again.user.message_id],
      ['delta question', again.user.message_id],
      ['answer to delta question', again.user.message_id],
    ]);
    const md = (await get(`/api/chats/${chatId}/export?format=md`).expect(200)).text;
    // (The chat keeps its title, from the first message sent: "alpha question".)
    const mdBody = md.split('\n## ').slice(1).join('\n## ');
    expect(mdBody).toContain('epsilon question');
    for (const gone of ['alpha', 'beta', 'gamma', 'delta']) expect(mdBody).not.toContain(gone);
    const imported = await request(server.url).post('/api/chats/import').set('Cookie', alice).send(exported).expect(201);
    expect((await listing(imported.body.id)).map((m) => m.content)).toEqual(['epsilon question', 'answer to epsilon question']);

    // A share link shows the current branch.
    const share = await request(server.url).post(`/api/chats/${chatId}/share`).set('Cookie', alice).expect(201);
    const shared = (await request(server.url).get(share.body.url).expect(200)).text;
    expect(shared).toContain('answer to epsilon question');
    for (const gone of ['answer to alpha', 'beta', 'gamma', 'delta']) expect(shared).not.toContain(gone);
  });

  it('editing a later message keeps the turns before it in the context and the listing', async () => {
    const { chatId, turns } = await chatOf('one', 'two', 'three');
    const edit = await turn({ content: 'TWO', chat_id: chatId, edit_of: turns[1].user.message_id });
    expect(lastContext()).toEqual(['user: one', 'assistant: answer to one', 'user: TWO']);
    expect((await listing(chatId)).map((m) => m.content)).toEqual(['one', 'answer to one', 'TWO', 'answer to TWO']);
    const old = (await get(`/api/messages/${turns[1].user.message_id}`).expect(200)).body;
    expect(old.following.map((m: { content: string }) => m.content)).toEqual(['answer to two', 'three', 'answer to three']);
    // A regenerate after the edit replaces the new branch's answer only.
    ws.send({ type: 'regenerate', id: 'rg1', message_id: edit.end.message_id });
    const rg = await ws.collect((f) => f.type === 'agent_response_end' && f.id === 'rg1');
    expect(rg[rg.length - 1].content).toBe('answer to TWO');
    expect(lastContext()).toEqual(['user: one', 'assistant: answer to one', 'user: TWO']);
    expect((await listing(chatId)).map((m) => m.content)).toEqual(['one', 'answer to one', 'TWO', 'answer to TWO']);
    expect((await get(`/api/messages/${turns[1].user.message_id}`).expect(200)).body.following).toHaveLength(3);
  });

  it('refuses an edit of what is not a user message of that chat, the sender’s own and current, with a sentence', async () => {
    const { chatId, turns } = await chatOf('refuse me');
    const other = await chatOf('elsewhere');
    const q = turns[0].user.message_id as string;
    const stored = async () => (await listing(chatId)).map((m) => m.content);
    const before = await stored();
    const refused = async (frame: Record<string, unknown>, on = ws) => (await turn({ content: 'edited', ...frame }, on)).error;

    expect(await refused({ edit_of: q })).toMatchObject({ code: 'invalid_message', message: 'edit_of: chat_id is required with it' });
    expect(await refused({ chat_id: chatId, edit_of: 'not-a-uuid' })).toMatchObject({ code: 'invalid_message' });
    expect(await refused({ chat_id: chatId, edit_of: '00000000-0000-4000-8000-000000000000' })).toMatchObject({
      code: 'not_found',
      message: 'edit_of: no such message in that chat',
    });
    expect(await refused({ chat_id: chatId, edit_of: other.turns[0].user.message_id })).toMatchObject({ code: 'not_found' });
    expect(await refused({ chat_id: chatId, edit_of: turns[0].end.message_id })).toMatchObject({
      code: 'invalid_message',
      message: 'edit_of: only a user message can be edited',
    });
    // Another user's message (in their own chat or named with this one) is as unknown as a missing one.
    const bobWs = await WsTestClient.connect(server.wsUrl, { headers: { cookie: bob } });
    try {
      expect(await refused({ chat_id: chatId, edit_of: q }, bobWs)).toMatchObject({ code: 'not_found' });
      const bobs = await turn({ content: 'bob asks' }, bobWs);
      expect(await refused({ chat_id: chatId, edit_of: bobs.user.message_id })).toMatchObject({ code: 'not_found' });
      expect(await refused({ chat_id: bobs.end.chat_id, edit_of: bobs.user.message_id })).toMatchObject({ code: 'not_found', message: 'no such chat' });
    } finally {
      bobWs.close();
    }
    expect(await stored()).toEqual(before);

    // An earlier version cannot be edited again (the current one can); nor can an old branch's answer be regenerated.
    const edit = await turn({ content: 'edited once', chat_id: chatId, edit_of: q });
    expect(edit.error).toBeUndefined();
    expect(await refused({ chat_id: chatId, edit_of: q })).toMatchObject({
      code: 'invalid_message',
      message: 'edit_of: that message is an earlier version; edit the one the chat shows now',
    });
    ws.send({ type: 'regenerate', id: 'rg-old', message_id: turns[0].end.message_id });
    expect(await ws.next((f) => f.id === 'rg-old' && f.type === 'error')).toMatchObject({ code: 'not_found' });
    expect(await stored()).toEqual(['edited once', 'answer to edited once']);
  });

  it('refuses an edit while an answer after the message still streams', async () => {
    const { chatId, turns } = await chatOf('slow start');
    let release = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    fake.enqueue({ kind: 'stream', content: ['slow ', 'answer'], pauseAt: { piece: 1, gate } });
    ws.send({ type: 'user_message', id: 'slow', content: 'slow follow-up', chat_id: chatId });
    await ws.next((f) => f.type === 'agent_response' && f.id === 'slow');
    const refused = await turn({ content: 'too soon', chat_id: chatId, edit_of: turns[0].user.message_id });
    expect(refused.error).toMatchObject({ code: 'invalid_message', message: 'edit_of: an answer after that message is still streaming; stop it first' });
    release();
    await ws.next((f) => f.type === 'agent_response_end' && f.id === 'slow');
    expect((await listing(chatId)).map((m) => m.content)).toEqual(['slow start', 'answer to slow start', 'slow follow-up', 'slow answer']);
  });
});

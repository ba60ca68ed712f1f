import request from 'supertest';
import { FakeDeepSeek } from './fakes/deepseek.fake';
import { type RunningApp, startApp } from './support/app';
import { WsTestClient } from './support/ws-client';

describe('chat features: models, settings, context, search, export, sharing, files, regenerate, usage (e2e)', () => {
  let fake: FakeDeepSeek;
  let server: RunningApp;
  let ws: WsTestClient;

  beforeAll(async () => {
    fake = await FakeDeepSeek.start();
    server = await startApp({ DEEPSEEK_BASE_URL: fake.baseUrl, DEEPSEEK_API_KEY: 'test-key', CONTEXT_TOKENS: '300' });
    ws = await WsTestClient.connect(server.wsUrl);
  });
  afterAll(async () => {
    ws.close();
    await server.close();
    await fake.close();
  });

  async function turn(frame: Record<string, unknown>) {
    const id = `t${Math.random()}`;
    ws.send({ type: 'user_message', id, ...frame });
    const frames = await ws.collect((f) => f.type === 'agent_response_end' && f.id === id);
    return { frames, end: frames[frames.length - 1], start: frames.find((f) => f.type === 'agent_response_start')! };
  }
  const lastBody = () => fake.requests[fake.requests.length - 1].body;

  it('lists models from the model API, default first', async () => {
    const { body } = await request(server.url).get('/api/models').expect(200);
    expect(body).toEqual({ default: 'deepseek-v4-flash', models: [{ id: 'deepseek-v4-flash' }, { id: 'deepseek-v4-pro' }] });
  });

  it('options become the chat settings: model, thinking, temperature, max_tokens, system prompt; null resets', async () => {
    const first = await turn({
      content: 'settings please',
      options: { model: 'deepseek-v4-pro', thinking: false, temperature: 0.3, max_tokens: 77, system_prompt: 'You are terse.' },
    });
    expect(first.start.model).toBe('deepseek-v4-pro');
    expect(lastBody()).toMatchObject({ model: 'deepseek-v4-pro', thinking: { type: 'disabled' }, temperature: 0.3, max_tokens: 77 });
    expect(lastBody().messages[0]).toEqual({ role: 'system', content: 'You are terse.' });
    // Later turns keep them; null resets one field.
    await turn({ content: 'again', chat_id: first.end.chat_id, options: { temperature: null } });
    expect(lastBody()).toMatchObject({ model: 'deepseek-v4-pro', max_tokens: 77 });
    expect(lastBody().temperature).toBeUndefined();
    expect(lastBody().messages[0]).toEqual({ role: 'system', content: 'You are terse.' });
  });

  it('sends at most CONTEXT_TOKENS of history: oldest turns leave first, the newest message stays', async () => {
    const long = 'word '.repeat(100); // ~125 tokens a turn
    const a = await turn({ content: `first ${long}` });
    const chat = a.end.chat_id;
    await turn({ content: `second ${long}`, chat_id: chat });
    const third = await turn({ content: `third ${long}`, chat_id: chat });
    const sent = lastBody().messages.map((m: { content: string }) => m.content.split(' ')[0]);
    expect(sent).not.toContain('first');
    expect(sent[sent.length - 1]).toBe('third');
    expect(third.start.omitted_turns).toBeGreaterThanOrEqual(1);
  });

  it('stores omitted_turns with the answer: chat and message API, page, share page, export and import show it', async () => {
    const long = 'word '.repeat(100); // ~125 tokens a turn
    const turns = [await turn({ content: `one ${long}` })];
    const chat = turns[0].end.chat_id as string;
    for (const word of ['two', 'three']) turns.push(await turn({ content: `${word} ${long}`, chat_id: chat }));
    const left = turns.map((t) => t.start.omitted_turns);
    expect(left[0]).toBeUndefined();
    expect(left[2]).toBeGreaterThanOrEqual(1);
    const answerId = turns[2].start.message_id as string;

    const { body } = await request(server.url).get(`/api/chats/${chat}`).expect(200);
    const answers = body.messages.filter((m: { role: string }) => m.role === 'assistant');
    expect(answers.map((m: { id: string }) => m.id)).toEqual(turns.map((t) => t.start.message_id));
    // each answer shows what its own start frame said; none of them is a user message's
    expect(answers.map((m: { omitted_turns?: number }) => m.omitted_turns)).toEqual(left);
    expect(answers[0]).not.toHaveProperty('omitted_turns');
    for (const m of body.messages.filter((m: { role: string }) => m.role === 'user')) expect(m).not.toHaveProperty('omitted_turns');
    expect((await request(server.url).get(`/api/messages/${answerId}`).expect(200)).body.omitted_turns).toBe(left[2]);

    const article = (html: string, id: string) => html.match(new RegExp(`<article[^>]*data-message-id="${id}"[^>]*>`))?.[0] ?? '';
    const page = (await request(server.url).get(`/chat/${chat}`).expect(200)).text;
    expect(article(page, answerId)).toContain(`data-omitted-turns="${left[2]}"`);
    expect(article(page, turns[0].start.message_id as string)).not.toContain('data-omitted-turns');
    expect(page.match(/data-omitted-turns=/g)?.length).toBe(left.filter((n) => n).length);
    const share = await request(server.url).post(`/api/chats/${chat}/share`).expect(201);
    expect(article((await request(server.url).get(share.body.url).expect(200)).text, answerId)).toContain(`data-omitted-turns="${left[2]}"`);

    const exported = JSON.parse((await request(server.url).get(`/api/chats/${chat}/export?format=json`).expect(200)).text);
    expect(exported.messages.find((m: { id: string }) => m.id === answerId).omitted_turns).toBe(left[2]);
    const md = (await request(server.url).get(`/api/chats/${chat}/export?format=md`).expect(200)).text;
    expect(md).toContain(`_(${left[2]} older turn(s) left out of the model's context)_`);
    const imported = await request(server.url).post('/api/chats/import').send(exported).expect(201);
    const copy = (await request(server.url).get(`/api/chats/${imported.body.id}`).expect(200)).body;
    expect(copy.messages.filter((m: { role: string }) => m.role === 'assistant').map((m: { omitted_turns?: number }) => m.omitted_turns)).toEqual(left);

    // anything but a positive integer no larger than the messages before it is dropped on import
    const odd = [-1, 0, 1.5, '2', 99, null];
    const messages = odd.flatMap((n) => [
      { role: 'user', content: 'q' },
      { role: 'assistant', content: 'a', omitted_turns: n },
    ]);
    messages.push({ role: 'user', content: 'q', omitted_turns: 1 } as never, { role: 'assistant', content: 'ok', omitted_turns: 3 });
    const bad = await request(server.url).post('/api/chats/import').send({ format: 'chat-export', version: 1, messages }).expect(201);
    const badCopy = (await request(server.url).get(`/api/chats/${bad.body.id}`).expect(200)).body;
    expect(badCopy.messages.map((m: { omitted_turns?: number }) => m.omitted_turns ?? null)).toEqual([...messages.slice(0, -1).map(() => null), 3]);
  });

  it('searches the caller’s messages and titles, ranked, with snippets; empty q is a 400', async () => {
    const t = await turn({ content: 'Tell me about the platypus please' });
    const { body } = await request(server.url).get('/api/search').query({ q: 'platypus' }).expect(200);
    expect(body.results.length).toBeGreaterThanOrEqual(2);
    expect(body.results[0]).toMatchObject({ chat_id: t.end.chat_id, message_id: null, title: expect.stringContaining('platypus') });
    const hit = body.results.find((r: { message_id: string | null }) => r.message_id);
    expect(hit.snippet).toContain('[platypus]');
    await request(server.url).get('/api/search').query({ q: '' }).expect(400);
    const none = await request(server.url).get('/api/search').query({ q: 'zyxwvut' }).expect(200);
    expect(none.body.results).toEqual([]);
  });

  it('exports JSON and Markdown as downloads, and imports the JSON back as a new chat', async () => {
    fake.enqueue({ kind: 'stream', reasoning: ['hmm'], content: ['**Export** me'] });
    const t = await turn({ content: 'export this' });
    const json = await request(server.url).get(`/api/chats/${t.end.chat_id}/export?format=json`).expect(200);
    // Named after the chat's title (issue 20).
    expect(json.headers['content-disposition']).toBe('attachment; filename="export this.json"');
    const exported = JSON.parse(json.text);
    expect(exported).toMatchObject({ format: 'chat-export', version: 1, id: t.end.chat_id, title: 'export this' });
    expect(exported.messages.map((m: { role: string }) => m.role)).toEqual(['user', 'assistant']);
    const md = await request(server.url).get(`/api/chats/${t.end.chat_id}/export?format=md`).expect(200);
    expect(md.headers['content-type']).toMatch(/text\/markdown/);
    expect(md.headers['content-disposition']).toBe('attachment; filename="export this.md"');
    expect(md.text).toContain('# export this');
    expect(md.text).toContain('**Export** me');

    const imported = await request(server.url).post('/api/chats/import').send(exported).expect(201);
    expect(imported.body.id).not.toBe(t.end.chat_id);
    const copy = await request(server.url).get(`/api/chats/${imported.body.id}`).expect(200);
    expect(copy.body.messages.map((m: { content: string }) => m.content)).toEqual(['export this', '**Export** me']);
  });

  it.each([
    ['a wrong format', { format: 'other', version: 1, messages: [] }],
    ['a wrong version', { format: 'chat-export', version: 2, messages: [] }],
    [
      'a bad role',
      {
        format: 'chat-export',
        version: 1,
        messages: [
          { role: 'user', content: 'ok' },
          { role: 'system', content: 'x' },
        ],
      },
    ],
    ['non-string content', { format: 'chat-export', version: 1, messages: [{ role: 'user', content: 5 }] }],
    ['no messages', { format: 'chat-export', version: 1 }],
  ])('refuses an import with %s and writes nothing', async (_name, body) => {
    const before = (await request(server.url).get('/api/chats')).body.chats.length;
    await request(server.url).post('/api/chats/import').send(body).expect(400);
    expect((await request(server.url).get('/api/chats')).body.chats.length).toBe(before);
  });

  it('shares a read-only page, and revoking makes the link 404', async () => {
    fake.enqueue({ kind: 'stream', content: ['shared <b>answer</b>'] });
    const t = await turn({ content: 'share me' });
    const first = await request(server.url).post(`/api/chats/${t.end.chat_id}/share`).expect(201);
    expect(first.body.url).toBe(`/share/${first.body.token}`);
    const second = await request(server.url).post(`/api/chats/${t.end.chat_id}/share`).expect(201);
    expect(second.body.token).not.toBe(first.body.token);
    const page = await request(server.url).get(first.body.url).expect(200);
    expect(page.text).toContain('share me');
    expect(page.text).toContain('shared &lt;b&gt;answer&lt;/b&gt;');
    expect(page.text).not.toContain('data-chat-list'); // nothing else of the owner's
    expect(page.text).not.toContain('data-chat-form');
    await request(server.url).delete(`/api/chats/${t.end.chat_id}/share`).expect(204);
    await request(server.url).get(first.body.url).expect(404);
    await request(server.url).get(second.body.url).expect(404);
  });

  it('attaches text files: their text goes to the model, now and in later turns', async () => {
    const up = await request(server.url).post('/api/files').attach('file', Buffer.from('line one\nline two\n'), 'notes.txt').expect(201);
    expect(up.body).toEqual({ id: expect.any(String), name: 'notes.txt', size: 18 });
    const t = await turn({ content: 'summarize the file', attachments: [up.body.id] });
    const userFrame = t.frames.find((f) => f.type === 'user_message')!;
    expect(userFrame.attachments).toEqual([{ id: up.body.id, name: 'notes.txt', size: 18 }]);
    expect(lastBody().messages[0].content).toContain('summarize the file');
    expect(lastBody().messages[0].content).toContain('notes.txt');
    expect(lastBody().messages[0].content).toContain('line one\nline two');
    await turn({ content: 'and now?', chat_id: t.end.chat_id });
    expect(lastBody().messages[0].content).toContain('line one\nline two');
    const stored = await request(server.url).get(`/api/chats/${t.end.chat_id}`).expect(200);
    expect(stored.body.messages[0].attachments).toEqual([{ id: up.body.id, name: 'notes.txt', size: 18 }]);
  });

  it('refuses binary (415), too large (413) and unknown attachments (not_found)', async () => {
    await request(server.url)
      .post('/api/files')
      .attach('file', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0xff]), 'x.png')
      .expect(415);
    await request(server.url).post('/api/files').attach('file', Buffer.from('a\u0000b'), 'nul.txt').expect(415);
    await request(server.url).post('/api/files').attach('file', Buffer.alloc(1_048_577, 'a'), 'big.txt').expect(413);
    await request(server.url).post('/api/files').attach('file', Buffer.alloc(1_048_576, 'a'), 'max.txt').expect(201);
    ws.send({ type: 'user_message', id: 'att', content: 'x', attachments: ['00000000-0000-4000-8000-000000000000'] });
    expect(await ws.nextOfType('error')).toMatchObject({ code: 'not_found', id: 'att' });
  });

  it('regenerate answers the same turn again; the old answer stays readable as a previous version', async () => {
    fake.enqueue({ kind: 'stream', content: ['first try'] });
    const t = await turn({ content: 'regenerate me' });
    fake.enqueue({ kind: 'stream', content: ['second try'] });
    ws.send({ type: 'regenerate', id: 'rg', message_id: t.end.message_id });
    const frames = await ws.collect((f) => f.type === 'agent_response_end' && f.id === 'rg');
    const start = frames.find((f) => f.type === 'agent_response_start')!;
    expect(start.previous_versions).toEqual([t.end.message_id]);
    expect(frames[frames.length - 1]).toMatchObject({ status: 'complete', content: 'second try' });
    expect(lastBody().messages).toEqual([{ role: 'user', content: 'regenerate me' }]);
    const chat = await request(server.url).get(`/api/chats/${t.end.chat_id}`).expect(200);
    expect(chat.body.messages.map((m: { content: string }) => m.content)).toEqual(['regenerate me', 'second try']);
    expect(chat.body.messages[1].previous_versions).toEqual([t.end.message_id]);
    const old = await request(server.url).get(`/api/messages/${t.end.message_id}`).expect(200);
    expect(old.body).toMatchObject({ content: 'first try', replaced_by: start.message_id });
    // The next turn's context carries the new answer, not the old one.
    await turn({ content: 'next', chat_id: t.end.chat_id });
    expect(lastBody().messages.map((m: { content: string }) => m.content)).toEqual(['regenerate me', 'second try', 'next']);
  });

  it('sums the model’s own usage figures for the caller', async () => {
    const before = (await request(server.url).get('/api/usage').expect(200)).body;
    const t = await turn({ content: 'count me' });
    const after = (await request(server.url).get('/api/usage').expect(200)).body;
    expect(after.messages).toBe(before.messages + 1);
    expect(after.total_tokens - before.total_tokens).toBe(t.end.usage.total_tokens);
    expect(after.prompt_tokens - before.prompt_tokens).toBe(t.end.usage.prompt_tokens);
  });

  it('exposes Prometheus metrics: sockets, generations, pieces, tokens, latency, errors', async () => {
    fake.enqueue({ kind: 'error', status: 401 });
    await turn({ content: 'fail once' });
    const res = await request(server.url).get('/metrics').expect(200);
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(res.text)?.[1]);
    expect(value('chat_open_sockets')).toBe(1);
    expect(value('chat_running_generations')).toBe(0);
    expect(value('chat_pieces_total')).toBeGreaterThan(10);
    expect(res.text).toMatch(/^chat_tokens_total\{kind="completion"\} [1-9]/m);
    expect(res.text).toMatch(/^chat_errors_total\{code="upstream_auth"\} 1$/m);
    expect(res.text).toMatch(/^chat_time_to_first_piece_seconds_count [1-9]/m);
    expect(res.text).toMatch(/^chat_generations_total\{status="complete"\} [1-9]/m);
  });
});

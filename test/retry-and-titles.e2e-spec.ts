/**
 * Issue 20 on the wire: a retried model request is announced to the chat's viewers
 * (`agent_retry`, never stored), and a new chat gets a generated title after its first answer
 * (`chat_updated`), with the first line as the fallback and a user's rename never overwritten.
 */
import request from 'supertest';
import { deferred } from '../src/common/deferred';
import { FakeDeepSeek } from './fakes/deepseek.fake';
import { type RunningApp, startApp, tempDatabaseUrl } from './support/app';
import { type AnyFrame, WsTestClient } from './support/ws-client';

/** Polls until `check` holds (the server's background work has no frame of its own to wait for). */
async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('retry notices and generated titles (e2e)', () => {
  let fake: FakeDeepSeek;
  let server: RunningApp;
  let client: WsTestClient;

  beforeAll(async () => {
    fake = await FakeDeepSeek.start();
    server = await startApp({
      DEEPSEEK_BASE_URL: fake.baseUrl,
      DEEPSEEK_API_KEY: 'test-key',
      DATABASE_URL: tempDatabaseUrl(),
      LLM_RETRY_BASE_MS: '5',
      LLM_MAX_RETRIES: '3',
      GENERATED_TITLES: 'true',
    });
  });
  beforeEach(async () => {
    client = await WsTestClient.connect(server.wsUrl);
  });
  afterEach(() => client.close());
  afterAll(async () => {
    await server?.close();
    await fake?.close();
  });

  const turnFrames = (id: string, c = client) => c.collect((f) => f.type === 'agent_response_end' && f.id === id);

  it('503 twice, then the answer: two agent_retry frames before the first piece, to every viewer, not replayed', async () => {
    const chatId = await newChat('first');
    const other = await WsTestClient.connect(server.wsUrl);
    try {
      other.send({ type: 'subscribe', chat_id: chatId });
      await other.next((f) => f.type === 'subscribed');
      fake.enqueue({ kind: 'error', status: 503 }, { kind: 'error', status: 503 }, { kind: 'stream', content: ['fine ', 'now'] });
      client.send({ type: 'user_message', id: 'r1', chat_id: chatId, content: 'again' });
      const [frames, seen] = await Promise.all([turnFrames('r1'), turnFrames('r1', other)]);
      for (const list of [frames, seen]) {
        const types = list
          .filter((f) => f.id === 'r1')
          .map((f) => f.type)
          .join(' ');
        expect(types).toMatch(/^(user_message )?agent_response_start agent_retry agent_retry (agent_response )+agent_response_end$/);
      }
      const retries = frames.filter((f) => f.type === 'agent_retry');
      const start = frames.find((f) => f.type === 'agent_response_start')!;
      expect(retries).toEqual([
        {
          type: 'agent_retry',
          id: 'r1',
          chat_id: chatId,
          message_id: start.message_id,
          attempt: 2,
          max_attempts: 4,
          retry_in_ms: expect.any(Number),
          reason: 'upstream_unavailable',
        },
        {
          type: 'agent_retry',
          id: 'r1',
          chat_id: chatId,
          message_id: start.message_id,
          attempt: 3,
          max_attempts: 4,
          retry_in_ms: expect.any(Number),
          reason: 'upstream_unavailable',
        },
      ]);
      expect(frames.at(-1)).toMatchObject({ status: 'complete', content: 'fine now' });
      // Not part of the message: a resume replays pieces and the end only.
      client.send({ type: 'resume', message_id: start.message_id, after_seq: 0 });
      const replay = await client.collect((f) => f.type === 'agent_response_end' && f.message_id === start.message_id);
      expect(replay.some((f) => f.type === 'agent_retry')).toBe(false);
    } finally {
      other.close();
    }
  });

  const usage = async () => (await request(server.url).get('/api/usage').expect(200)).body;
  const chatTitle = async (id: string) => (await request(server.url).get(`/api/chats/${id}`).expect(200)).body.title as string;
  /** A whole turn in an existing chat: by its end the server has long handled what came before it. */
  const anotherTurn = async (chatId: string, id: string) => {
    client.send({ type: 'user_message', id, chat_id: chatId, content: 'and then?' });
    return turnFrames(id);
  };

  it('a new chat is titled with its first line (Markdown stripped), then with the generated title: chat_updated, stored, counted in usage', async () => {
    const before = await usage();
    const titlesBefore = fake.titleRequests.length;
    fake.enqueueTitle({ kind: 'stream', content: ['"Quicksort ', 'in Python."'] });
    fake.enqueue({ kind: 'stream', content: ['Sure: ', 'it splits around a pivot.'] });
    const content = 'Here is **my** code:\n```python\ndef quicksort(a): ...\n```';
    client.send({ type: 'user_message', id: 't1', content, options: { temperature: 1.5, system_prompt: 'Be terse', thinking: true } });
    const frames = await client.collect((f) => f.type === 'chat_updated');
    const created = frames.find((f) => f.type === 'chat_created')!;
    expect(created.title).toBe('Here is my code:');
    const end = frames.find((f) => f.type === 'agent_response_end')!;
    // The answer ended first: the title never held it up.
    expect(frames.indexOf(end)).toBeLessThan(frames.length - 1);
    expect(frames.at(-1)).toEqual({ type: 'chat_updated', chat_id: created.chat_id, title: 'Quicksort in Python' });
    expect(await chatTitle(created.chat_id)).toBe('Quicksort in Python');
    const list = (await request(server.url).get('/api/chats').expect(200)).body.chats;
    expect(list.find((c: { id: string }) => c.id === created.chat_id).title).toBe('Quicksort in Python');

    // One small request of its own: the default model, none of the chat's options, thinking off.
    expect(fake.titleRequests.length).toBe(titlesBefore + 1);
    const asked = fake.titleRequests.at(-1)!.body;
    expect(asked).toMatchObject({ model: 'deepseek-v4-flash', thinking: { type: 'disabled' }, max_tokens: 64 });
    expect(asked.temperature).toBeUndefined();
    expect(asked.messages[0].content).toMatch(/short title/);
    expect(JSON.stringify(asked.messages)).not.toContain('Be terse');
    expect(asked.messages[1].content).toContain('def quicksort');
    expect(asked.messages[1].content).toContain('it splits around a pivot.');

    // Its tokens count for the caller; it is not an answer.
    const after = await usage();
    expect(after.messages).toBe(before.messages + 1);
    expect(after.total_tokens - before.total_tokens).toBeGreaterThan(end.usage.total_tokens);
  });

  it('a failed title request leaves the first line; only a new chat gets a title', async () => {
    const titlesBefore = fake.titleRequests.length;
    fake.enqueueTitle({ kind: 'error', status: 400 });
    client.send({ type: 'user_message', id: 'f1', content: '# Plans for *Monday*\nand the rest' });
    const frames = await turnFrames('f1');
    const chatId = frames[0].chat_id as string;
    expect(frames[0]).toMatchObject({ type: 'chat_created', title: 'Plans for Monday' });
    await until(() => fake.titleRequests.length === titlesBefore + 1, 'the title request');
    const later = await anotherTurn(chatId, 'f2');
    expect([...frames, ...later, ...client.frames].some((f: AnyFrame) => f.type === 'chat_updated')).toBe(false);
    expect(await chatTitle(chatId)).toBe('Plans for Monday');
    // The second turn asked for no title.
    expect(fake.titleRequests.length).toBe(titlesBefore + 1);
  });

  it("a user's rename while the title is on its way is never overwritten", async () => {
    const gate = deferred();
    const titlesBefore = fake.titleRequests.length;
    fake.enqueueTitle({ kind: 'stream', content: ['Late title'], gate: gate.promise });
    const before = await usage();
    client.send({ type: 'user_message', id: 'n1', content: 'name me' });
    const frames = await turnFrames('n1');
    const chatId = frames[0].chat_id as string;
    await until(() => fake.titleRequests.length === titlesBefore + 1, 'the title request');
    await request(server.url).patch(`/api/chats/${chatId}`).send({ title: 'My own name' }).expect(200);
    gate.resolve();
    const renamed = await client.next((f) => f.type === 'chat_updated');
    expect(renamed).toMatchObject({ chat_id: chatId, title: 'My own name' });
    // The late title's usage is recorded when its answer is in, just before the title would be
    // stored: wait for that, then for a whole turn.
    await until(async () => (await usage()).total_tokens > before.total_tokens, 'the late title');
    await anotherTurn(chatId, 'n2');
    expect(client.frames.filter((f) => f.type === 'chat_updated').map((f) => f.title)).toEqual(['My own name']);
    expect(await chatTitle(chatId)).toBe('My own name');
  });

  it('GENERATED_TITLES=false: no title request; the first line stays', async () => {
    const off = await startApp({ DEEPSEEK_BASE_URL: fake.baseUrl, DEEPSEEK_API_KEY: 'test-key', GENERATED_TITLES: 'false' });
    const socket = await WsTestClient.connect(off.wsUrl);
    try {
      const titlesBefore = fake.titleRequests.length;
      socket.send({ type: 'user_message', id: 'o1', content: '`npm` fails with *EACCES*' });
      const frames = await turnFrames('o1', socket);
      socket.send({ type: 'user_message', id: 'o2', chat_id: frames[0].chat_id, content: 'more' });
      await turnFrames('o2', socket);
      expect(frames[0].title).toBe('npm fails with EACCES');
      expect(fake.titleRequests.length).toBe(titlesBefore);
      expect(socket.frames.some((f) => f.type === 'chat_updated')).toBe(false);
    } finally {
      socket.close();
      await off.close();
    }
  });

  it('a stored answer carries its usage and time (chat API, page, export); an import keeps neither, and older exports still import', async () => {
    fake.enqueue({ kind: 'stream', content: ['Counted ', 'and timed'], delayMs: 3 });
    client.send({ type: 'user_message', id: 'u1', content: 'count me' });
    const frames = await turnFrames('u1');
    const end = frames.at(-1)!;
    const chatId = end.chat_id as string;
    const stored = (await request(server.url).get(`/api/chats/${chatId}`).expect(200)).body.messages;
    expect(stored[0].usage).toBeUndefined();
    expect(stored[1]).toMatchObject({ role: 'assistant', usage: end.usage, duration_ms: expect.any(Number) });
    expect(stored[1].duration_ms).toBeGreaterThan(0);
    // The page renders them for the answer's details.
    const html = (await request(server.url).get(`/chat/${chatId}`).expect(200)).text;
    const total = end.usage.total_tokens as number;
    expect(html).toContain(
      `data-answer-usage='{"total_tokens":${total},"prompt_tokens":${end.usage.prompt_tokens},"completion_tokens":${end.usage.completion_tokens} }'`,
    );
    expect(html).toContain(`data-elapsed-ms="${stored[1].duration_ms}"`);

    const download = await request(server.url).get(`/api/chats/${chatId}/export?format=json`).expect(200);
    const exported = JSON.parse(download.text);
    expect(exported.messages[1]).toMatchObject({ usage: end.usage, duration_ms: stored[1].duration_ms });
    const before = await usage();
    const imported = (await request(server.url).post('/api/chats/import').send(exported).expect(201)).body;
    const copy = (await request(server.url).get(`/api/chats/${imported.id}`).expect(200)).body.messages;
    expect(copy[1]).toMatchObject({ role: 'assistant', content: 'Counted and timed' });
    expect(copy[1].usage).toBeUndefined();
    expect(copy[1].duration_ms).toBeUndefined();
    // Imported tokens were not spent by this user.
    expect((await usage()).total_tokens).toBe(before.total_tokens);
    // An export made before these fields existed.
    const old = {
      format: 'chat-export',
      version: 1,
      title: 'Old',
      messages: exported.messages.map(({ role, content, status }: Record<string, unknown>) => ({ role, content, status })),
    };
    await request(server.url).post('/api/chats/import').send(old).expect(201);
  });

  it("downloads are named after the chat's title, made safe for a file name", async () => {
    fake.enqueueTitle({ kind: 'stream', content: ['计划: a/b "plan" for 2027?'] });
    client.send({ type: 'user_message', id: 'd1', content: 'name the file' });
    const updated = await client.next((f) => f.type === 'chat_updated');
    const md = await request(server.url).get(`/api/chats/${updated.chat_id}/export?format=md`).expect(200);
    // Non-ASCII names travel as RFC 5987 filename* with an ASCII fallback.
    expect(md.headers['content-disposition']).toBe(
      `attachment; filename="?? a b plan for 2027.md"; filename*=UTF-8''%E8%AE%A1%E5%88%92%20a%20b%20plan%20for%202027.md`,
    );
    await request(server.url).patch(`/api/chats/${updated.chat_id}`).send({ title: '...' }).expect(200);
    const json = await request(server.url).get(`/api/chats/${updated.chat_id}/export?format=json`).expect(200);
    expect(json.headers['content-disposition']).toBe(`attachment; filename="chat-${updated.chat_id}.json"`);
  });

  async function newChat(content: string): Promise<string> {
    client.send({ type: 'user_message', id: `new-${content}`, content });
    const frames = await turnFrames(`new-${content}`);
    return frames[0].chat_id as string;
  }
});

import request from 'supertest';
import { FakeDeepSeek } from './fakes/deepseek.fake';
import { type RunningApp, startApp, tempDatabaseUrl } from './support/app';
import { type AnyFrame, WsTestClient } from './support/ws-client';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('chat over /ws (e2e)', () => {
  let fake: FakeDeepSeek;
  let server: RunningApp;
  let client: WsTestClient;
  const databaseUrl = tempDatabaseUrl();

  const settings = () => ({
    DEEPSEEK_BASE_URL: fake.baseUrl,
    DEEPSEEK_API_KEY: 'test-key',
    DATABASE_URL: databaseUrl,
    LLM_RETRY_BASE_MS: '5',
    LLM_MAX_RETRIES: '2',
    LLM_TIMEOUT_MS: '400',
  });

  beforeAll(async () => {
    fake = await FakeDeepSeek.start();
    server = await startApp(settings());
  });
  beforeEach(async () => {
    client = await WsTestClient.connect(server.wsUrl);
  });
  afterEach(() => client.close());
  afterAll(async () => {
    await server.close();
    await fake.close();
  });

  const turnFrames = (id: string) => client.collect((f) => f.type === 'agent_response_end' && f.id === id);

  it('sends connected with a v4 connection id and protocol 1', async () => {
    expect(client.connectionId).toMatch(UUID);
    expect(client.connectionId[14]).toBe('4');
    expect(client.frames[0]).toEqual({ type: 'connected', connection_id: client.connectionId, protocol: 1 });
  });

  it('streams a whole turn in a new chat and stores it', async () => {
    fake.enqueue({ kind: 'stream', reasoning: ['Hm, ', 'easy.'], content: ['Hello', ', ', 'world', '!'] });
    client.send({ type: 'user_message', id: 'req-1', content: 'Say hello' });
    const frames = await turnFrames('req-1');
    // Pieces that reach the server in one read share a frame (PROTOCOL: seq counts frames), so the
    // number of frames depends on timing; their kinds, order, numbering and text do not.
    const types = frames.map((f) => f.type).join(' ');
    expect(types).toMatch(/^chat_created user_message agent_response_start (agent_reasoning ){1,2}(agent_response ){1,4}agent_response_end$/);
    for (const frame of frames) expect(frame.id).toBe('req-1');
    const [created, user, start] = frames;
    expect(created.chat_id).toMatch(UUID);
    expect(created.title).toBe('Say hello');
    expect(user).toMatchObject({ chat_id: created.chat_id, content: 'Say hello' });
    expect(user.message_id).toMatch(UUID);
    expect(start).toMatchObject({ chat_id: created.chat_id, model: 'deepseek-v4-flash' });
    const pieces = frames.filter((f) => f.seq !== undefined && f.type !== 'agent_response_end');
    expect(pieces.map((f) => f.seq)).toEqual(pieces.map((_, i) => i + 1));
    const end = frames[frames.length - 1];
    expect(end).toMatchObject({ seq: pieces.length, status: 'complete', content: 'Hello, world!', reasoning: 'Hm, easy.' });
    expect(end.usage).toMatchObject({ total_tokens: expect.any(Number) });
    const answer = frames
      .filter((f) => f.type === 'agent_response')
      .map((f) => f.content)
      .join('');
    expect(answer).toBe(end.content);
    const thinking = frames
      .filter((f) => f.type === 'agent_reasoning')
      .map((f) => f.content)
      .join('');
    expect(thinking).toBe(end.reasoning);

    const stored = await request(server.url).get(`/api/chats/${created.chat_id}`).expect(200);
    expect(stored.body.messages).toEqual([
      expect.objectContaining({ id: user.message_id, role: 'user', content: 'Say hello', status: 'complete' }),
      expect.objectContaining({ id: start.message_id, role: 'assistant', content: 'Hello, world!', reasoning: 'Hm, easy.', status: 'complete' }),
    ]);
    const list = await request(server.url).get('/api/chats').expect(200);
    expect(list.body.chats[0]).toMatchObject({ id: created.chat_id, title: 'Say hello' });
    // The request that reached the model
    const sent = fake.requests[fake.requests.length - 1].body;
    expect(sent).toMatchObject({ model: 'deepseek-v4-flash', stream: true, stream_options: { include_usage: true } });
    expect(sent.messages).toEqual([{ role: 'user', content: 'Say hello' }]);
  });

  it('sends the whole history as context, without old reasoning', async () => {
    fake.enqueue({ kind: 'stream', reasoning: ['secret thought'], content: ['First answer'] });
    client.send({ type: 'user_message', id: 'a', content: 'First question' });
    const first = await turnFrames('a');
    const chatId = first[0].chat_id;
    fake.enqueue({ kind: 'stream', content: ['Second answer'] });
    client.send({
      type: 'user_message',
      id: 'b',
      chat_id: chatId,
      content: 'Second question',
      options: { thinking: false, temperature: 0.5, system_prompt: 'Be brief.' },
    });
    const second = await turnFrames('b');
    expect(second.some((f) => f.type === 'chat_created')).toBe(false);
    const body = fake.requests[fake.requests.length - 1].body;
    expect(body.messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'First question' },
      { role: 'assistant', content: 'First answer' },
      { role: 'user', content: 'Second question' },
    ]);
    expect(body.thinking).toEqual({ type: 'disabled' });
    expect(body.temperature).toBe(0.5);
  });

  it('interleaves two chats streaming at once on one socket', async () => {
    fake.enqueue({ kind: 'stream', content: ['a1', 'a2', 'a3', 'a4'], delayMs: 30 });
    fake.enqueue({ kind: 'stream', content: ['b1', 'b2', 'b3', 'b4'], delayMs: 30 });
    client.send({ type: 'user_message', id: 'A', content: 'chat A' });
    client.send({ type: 'user_message', id: 'B', content: 'chat B' });
    const ends: AnyFrame[] = [];
    while (ends.length < 2) ends.push(await client.next((f) => f.type === 'agent_response_end'));
    const byId = (id: string) => client.frames.filter((f) => f.id === id);
    for (const [id, text] of [
      ['A', 'a1a2a3a4'],
      ['B', 'b1b2b3b4'],
    ]) {
      const frames = byId(id);
      const pieces = frames.filter((f) => f.type === 'agent_response');
      expect(pieces.map((f) => f.seq)).toEqual([1, 2, 3, 4]);
      expect(pieces.map((f) => f.content).join('')).toBe(text);
      expect(frames[frames.length - 1]).toMatchObject({ type: 'agent_response_end', status: 'complete', content: text });
      expect(new Set(frames.map((f) => f.chat_id)).size).toBe(1);
    }
    // Really interleaved: B's first piece came before A's last.
    const order = client.frames.filter((f) => f.type === 'agent_response').map((f) => f.id);
    expect(order.indexOf('B')).toBeLessThan(order.lastIndexOf('A'));
  });

  describe('bad frames', () => {
    const cases: Array<[string, string | object, object]> = [
      ['not JSON', '{nope', { code: 'invalid_json' }],
      ['a JSON array', '[1,2]', { code: 'invalid_message' }],
      ['no type', { content: 'x' }, { code: 'invalid_message', message: expect.stringContaining('type') }],
      ['a numeric type', { type: 7 }, { code: 'invalid_message', message: expect.stringContaining('type') }],
      ['an unknown type', { type: 'dance', id: 'u1' }, { code: 'unknown_type', id: 'u1' }],
      ['empty content', { type: 'user_message', id: 'e1', content: '' }, { code: 'invalid_message', id: 'e1', message: expect.stringContaining('content') }],
      ['content too long', { type: 'user_message', content: 'x'.repeat(32001) }, { code: 'invalid_message', message: expect.stringContaining('content') }],
      ['content not a string', { type: 'user_message', content: 42 }, { code: 'invalid_message', message: expect.stringContaining('content') }],
      [
        'a malformed chat_id',
        { type: 'user_message', content: 'hi', chat_id: 'nope' },
        { code: 'invalid_message', message: expect.stringContaining('chat_id') },
      ],
      [
        'temperature out of range',
        { type: 'user_message', content: 'hi', options: { temperature: 3 } },
        { code: 'invalid_message', message: expect.stringContaining('options.temperature') },
      ],
      [
        'max_tokens of 0',
        { type: 'user_message', content: 'hi', options: { max_tokens: 0 } },
        { code: 'invalid_message', message: expect.stringContaining('max_tokens') },
      ],
      ['an unknown chat', { type: 'user_message', id: 'n1', content: 'hi', chat_id: '00000000-0000-4000-8000-000000000000' }, { code: 'not_found', id: 'n1' }],
      [
        'resume without after_seq',
        { type: 'resume', message_id: '00000000-0000-4000-8000-000000000000' },
        { code: 'invalid_message', message: expect.stringContaining('after_seq') },
      ],
      ['resume of an unknown message', { type: 'resume', message_id: '00000000-0000-4000-8000-000000000000', after_seq: 0 }, { code: 'not_found' }],
      ['stop of an unknown message', { type: 'stop', message_id: '00000000-0000-4000-8000-000000000000' }, { code: 'not_found' }],
      ['subscribe to an unknown chat', { type: 'subscribe', chat_id: '00000000-0000-4000-8000-000000000000' }, { code: 'not_found' }],
      ['a non-string id', { type: 'ping', id: 5 }, { code: 'invalid_message', message: expect.stringContaining('id') }],
    ];
    it.each(cases)('answers %s with an error frame and keeps the socket usable', async (_name, frame, expected) => {
      client.send(frame);
      const error = await client.nextOfType('error');
      expect(error).toMatchObject(expected);
      client.send({ type: 'ping', id: 'still-there' });
      expect(await client.nextOfType('pong')).toEqual({ type: 'pong', id: 'still-there' });
    });

    it('closes a frame over WS_MAX_PAYLOAD with 1009 and keeps serving others', async () => {
      const other = await WsTestClient.connect(server.wsUrl);
      client.send({ type: 'user_message', content: 'x'.repeat(70_000) });
      expect(await client.closed).toBe(1009);
      other.send({ type: 'ping' });
      expect(await other.nextOfType('pong')).toEqual({ type: 'pong' });
      other.close();
    });
  });

  describe('upstream faults', () => {
    const faults: Array<[string, object, string]> = [
      ['401', { kind: 'error', status: 401 }, 'upstream_auth'],
      ['402', { kind: 'error', status: 402 }, 'upstream_quota'],
      ['429 every time', { kind: 'error', status: 429 }, 'upstream_rate_limited'],
      ['500 every time', { kind: 'error', status: 500 }, 'upstream_unavailable'],
      ['a hang with keep-alives', { kind: 'hang', keepAliveEveryMs: 50 }, 'upstream_timeout'],
    ];
    it.each(faults)('%s → error frame then agent_response_end with status error', async (_name, scenario, code) => {
      fake.setDefault(scenario as never);
      try {
        client.send({ type: 'user_message', id: 'f', content: 'will fail' });
        const frames = await turnFrames('f');
        const error = frames.find((f) => f.type === 'error')!;
        expect(error).toMatchObject({ code, id: 'f', chat_id: expect.any(String), message_id: expect.any(String) });
        const end = frames[frames.length - 1];
        expect(end).toMatchObject({ status: 'error', content: '', message_id: error.message_id });
        const stored = await request(server.url).get(`/api/chats/${end.chat_id}`).expect(200);
        expect(stored.body.messages[1]).toMatchObject({ role: 'assistant', status: 'error' });
      } finally {
        fake.setDefault(undefined as never);
      }
    });

    it('retries 429 and 503 before the first piece, then streams', async () => {
      fake.enqueue({ kind: 'error', status: 429 }, { kind: 'error', status: 503 }, { kind: 'stream', content: ['ok'] });
      const before = fake.requests.length;
      client.send({ type: 'user_message', id: 'r', content: 'retry me' });
      const frames = await turnFrames('r');
      expect(frames[frames.length - 1]).toMatchObject({ status: 'complete', content: 'ok' });
      expect(fake.requests.length - before).toBe(3);
      expect(frames.some((f) => f.type === 'error')).toBe(false);
    });

    it('a stream cut mid-answer keeps the text as interrupted', async () => {
      fake.enqueue({ kind: 'cut', content: ['partial ', 'answer'] });
      client.send({ type: 'user_message', id: 'c', content: 'cut me' });
      const frames = await turnFrames('c');
      const error = frames.find((f) => f.type === 'error')!;
      expect(error.code).toBe('upstream_interrupted');
      const sent = frames.filter((f) => f.type === 'agent_response');
      expect(sent.map((f) => f.content).join('')).toBe('partial answer'); // one frame or two, as the reads fell
      expect(frames[frames.length - 1]).toMatchObject({ status: 'interrupted', content: 'partial answer', seq: sent.length });
      const stored = await request(server.url).get(`/api/chats/${error.chat_id}`).expect(200);
      expect(stored.body.messages[1]).toMatchObject({ status: 'interrupted', content: 'partial answer' });
    });
  });

  it('stop aborts the upstream request and keeps what was sent', async () => {
    fake.enqueue({ kind: 'stream', content: Array.from({ length: 100 }, (_, i) => `w${i} `), delayMs: 20 });
    const abortedBefore = fake.aborted;
    client.send({ type: 'user_message', id: 's', content: 'long answer please' });
    const third = await client.next((f) => f.type === 'agent_response' && f.seq === 3);
    client.send({ type: 'stop', message_id: third.message_id });
    const frames = await turnFrames('s');
    const end = frames[frames.length - 1];
    const sent = client.frames.filter((f) => f.type === 'agent_response' && f.message_id === third.message_id);
    expect(end.status).toBe('stopped');
    expect(end.content).toBe(sent.map((f) => f.content).join(''));
    expect(end.seq).toBe(sent[sent.length - 1].seq);
    await fake.waitForAborted(abortedBefore + 1);
    const stored = await request(server.url).get(`/api/chats/${end.chat_id}`).expect(200);
    expect(stored.body.messages[1]).toMatchObject({ status: 'stopped', content: end.content });
    // Stopping an ended generation does nothing.
    client.send({ type: 'stop', id: 'again', message_id: third.message_id });
    client.send({ type: 'ping', id: 'p' });
    const after = await client.collect((f) => f.type === 'pong');
    expect(after.filter((f) => f.type !== 'pong')).toEqual([]);
  });

  it('resume replays exactly the missing frames, then continues live', async () => {
    const gate = deferred();
    fake.enqueue({ kind: 'stream', content: ['one ', 'two ', 'three ', 'four'], gate: gate.promise, delayMs: 10 });
    client.send({ type: 'user_message', id: 'g', content: 'resume me' });
    const start = await client.nextOfType('agent_response_start');
    const viewer = await WsTestClient.connect(server.wsUrl);
    viewer.send({ type: 'resume', message_id: start.message_id, after_seq: 0 });
    await new Promise((r) => setTimeout(r, 50));
    gate.resolve();
    const end = await viewer.nextOfType('agent_response_end');
    const got = viewer.frames.filter((f) => f.type === 'agent_response');
    expect(got.map((f) => f.seq)).toEqual([1, 2, 3, 4]);
    expect(end).toMatchObject({ id: 'g', status: 'complete', content: 'one two three four' });
    // After the end: replay from seq 2 gives 3, 4 and the end.
    viewer.send({ type: 'resume', message_id: start.message_id, after_seq: 2 });
    const replay = await viewer.collect((f) => f.type === 'agent_response_end');
    expect(replay.map((f) => [f.type, f.seq])).toEqual([
      ['agent_response', 3],
      ['agent_response', 4],
      ['agent_response_end', 4],
    ]);
    viewer.close();
  });

  it('subscribe makes another connection see the chat live (a second tab)', async () => {
    fake.enqueue({ kind: 'stream', content: ['first'] });
    client.send({ type: 'user_message', id: 'x', content: 'tab one' });
    const chatId = (await turnFrames('x'))[0].chat_id;
    const tab = await WsTestClient.connect(server.wsUrl);
    tab.send({ type: 'subscribe', id: 'sub', chat_id: chatId });
    expect(await tab.nextOfType('subscribed')).toEqual({ type: 'subscribed', id: 'sub', chat_id: chatId });
    fake.enqueue({ kind: 'stream', content: ['seen ', 'twice'] });
    client.send({ type: 'user_message', id: 'y', chat_id: chatId, content: 'from tab one' });
    const seen = await tab.collect((f) => f.type === 'agent_response_end');
    expect(seen.map((f) => f.type).join(' ')).toMatch(/^user_message agent_response_start (agent_response ){1,2}agent_response_end$/);
    expect(seen[0]).toMatchObject({ content: 'from tab one', id: 'y' });
    expect(
      seen
        .filter((f) => f.type === 'agent_response')
        .map((f) => f.content)
        .join(''),
    ).toBe('seen twice');
    tab.close();
  });

  it('answers model_not_configured without a key, and pages still work', async () => {
    const keyless = await startApp({ DATABASE_URL: tempDatabaseUrl(), DEEPSEEK_BASE_URL: fake.baseUrl });
    try {
      const ws = await WsTestClient.connect(keyless.wsUrl);
      const before = fake.requests.length;
      ws.send({ type: 'user_message', id: 'k', content: 'hello?' });
      const error = await ws.nextOfType('error');
      expect(error).toMatchObject({ code: 'model_not_configured', id: 'k' });
      expect(fake.requests.length).toBe(before);
      await request(keyless.url).get('/chat').expect(200);
      ws.close();
    } finally {
      await keyless.close();
    }
  });
});

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import request from 'supertest';
import { Environment } from '../src/config/environment';
import { FakeDeepSeek } from './fakes/deepseek.fake';
import { type RunningApp, startApp, tempDatabaseUrl } from './support/app';
import { ServerProcess } from './support/server-process';
import { type AnyFrame, WsTestClient } from './support/ws-client';

const ROOT = join(__dirname, '..');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i} `);

describe('lossless generations (e2e)', () => {
  let fake: FakeDeepSeek;
  let server: RunningApp;

  beforeAll(async () => {
    fake = await FakeDeepSeek.start();
    server = await startApp({ DEEPSEEK_BASE_URL: fake.baseUrl, DEEPSEEK_API_KEY: 'test-key', WS_PING_INTERVAL_MS: '100' });
  });
  afterAll(async () => {
    await server.close();
    await fake.close();
  });

  it('a viewer that leaves mid-answer finds it complete in the database', async () => {
    fake.enqueue({ kind: 'stream', content: words(30), delayMs: 10 });
    const ws = await WsTestClient.connect(server.wsUrl);
    ws.send({ type: 'user_message', id: 'l', content: 'leave early' });
    const first = await ws.next((f) => f.type === 'agent_response');
    ws.close();
    for (let i = 0; i < 100; i++) {
      const { body } = await request(server.url).get(`/api/chats/${first.chat_id}`);
      if (body.messages[1].status !== 'streaming') break;
      await sleep(50);
    }
    const { body } = await request(server.url).get(`/api/chats/${first.chat_id}`).expect(200);
    expect(body.messages[1]).toMatchObject({ status: 'complete', content: words(30).join('') });
  });

  it('resume after a drop: head + replay is exactly the answer, replay starts at the next seq', async () => {
    fake.enqueue({ kind: 'stream', content: words(40), delayMs: 10 });
    const a = await WsTestClient.connect(server.wsUrl);
    a.send({ type: 'user_message', id: 'r', content: 'resume me' });
    const head: AnyFrame[] = [];
    for (;;) {
      const frame = await a.next((f) => f.type === 'agent_response');
      head.push(frame);
      if (frame.seq === 7) break;
    }
    a.close();
    await sleep(60); // pieces go on while nobody watches
    const b = await WsTestClient.connect(server.wsUrl);
    b.send({ type: 'resume', id: 'again', message_id: head[0].message_id, after_seq: 7 });
    const replay = await b.collect((f) => f.type === 'agent_response_end');
    const pieces = replay.filter((f) => f.type === 'agent_response');
    expect(pieces[0].seq).toBe(8);
    expect(pieces.map((f) => f.seq)).toEqual(Array.from({ length: pieces.length }, (_, i) => 8 + i));
    const end = replay[replay.length - 1];
    expect(
      head
        .concat(pieces)
        .map((f) => f.content)
        .join(''),
    ).toBe(end.content);
    expect(end).toMatchObject({ status: 'complete', id: 'r', content: words(40).join('') });
    for (const frame of pieces) expect(frame.id).toBe('r'); // frames of a generation carry the starting id
    b.close();
  });

  it('resume of an answer whose log is gone sends agent_response_end alone, after a restart too', async () => {
    fake.enqueue({ kind: 'stream', content: ['kept ', 'answer'] });
    const ws = await WsTestClient.connect(server.wsUrl);
    ws.send({ type: 'user_message', id: 'k', content: 'keep' });
    const end = await ws.nextOfType('agent_response_end');
    ws.close();
    const databaseUrl = server.app.get(Environment).DATABASE_URL;
    const other = await startApp({ DEEPSEEK_BASE_URL: fake.baseUrl, DEEPSEEK_API_KEY: 'test-key', DATABASE_URL: databaseUrl });
    try {
      const viewer = await WsTestClient.connect(other.wsUrl);
      viewer.send({ type: 'resume', message_id: end.message_id, after_seq: 0 });
      const frames = await viewer.collect((f) => f.type === 'agent_response_end');
      expect(frames).toEqual([
        // seq: the live end's (pieces read together from the model may have shared a frame)
        {
          type: 'agent_response_end',
          id: 'k',
          chat_id: end.chat_id,
          message_id: end.message_id,
          seq: end.seq,
          status: 'complete',
          content: 'kept answer',
          usage: expect.any(Object),
          finish_reason: 'stop',
        },
      ]);
      viewer.close();
    } finally {
      await other.close();
    }
  });

  it('drops a socket that stops answering pings', async () => {
    const WebSocket = (await import('ws')).default;
    const socket = new WebSocket(server.wsUrl, { autoPong: false });
    const code = await new Promise<number>((resolve) => socket.on('close', (c: number) => resolve(c)));
    expect(code).toBe(1006); // terminated by the server, no close frame
  });
});

describe('restarts of a real server process (e2e)', () => {
  let fake: FakeDeepSeek;

  beforeAll(async () => {
    execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT });
    fake = await FakeDeepSeek.start();
  }, 120_000);
  afterAll(() => fake.close());

  const env = (databaseUrl: string, drainMs = '10000') => ({
    DATABASE_URL: databaseUrl,
    DEEPSEEK_BASE_URL: fake.baseUrl,
    DEEPSEEK_API_KEY: 'test-key',
    DRAIN_TIMEOUT_MS: drainMs,
    AUTH_MODE: 'none',
  });

  it('a bad setting stops the start with one readable line, no stack trace', () => {
    let failure: { status?: number; stdout?: string; stderr?: string } = {};
    try {
      execFileSync(process.execPath, [join(ROOT, 'dist', 'main.js')], {
        cwd: ROOT,
        env: { ...process.env, ...env(tempDatabaseUrl()), PORT: 'not-a-port' },
        encoding: 'utf8',
        stdio: 'pipe',
        timeout: 20_000,
      });
    } catch (error) {
      failure = error as typeof failure;
    }
    const output = `${failure.stdout ?? ''}${failure.stderr ?? ''}`;
    expect(failure.status).toBe(1);
    expect(output).toMatch(/Invalid configuration:\n {2}PORT: /);
    expect(output).not.toMatch(/\n\s+at /);
  });

  it('SIGTERM mid-answer: a short answer finishes within the drain, then the process exits', async () => {
    const db = tempDatabaseUrl();
    const proc = await ServerProcess.start(env(db));
    fake.enqueue({ kind: 'stream', content: words(20), delayMs: 25 });
    const ws = await WsTestClient.connect(proc.wsUrl);
    ws.send({ type: 'user_message', id: 't', content: 'finish me' });
    const first = await ws.next((f) => f.type === 'agent_response');
    const exited = proc.kill('SIGTERM');
    const end = await ws.nextOfType('agent_response_end', 10000);
    expect(end).toMatchObject({ status: 'complete', content: words(20).join('') });
    await exited;
    const again = await ServerProcess.start(env(db));
    const { body } = await request(again.url).get(`/api/chats/${first.chat_id}`).expect(200);
    expect(body.messages[1]).toMatchObject({ status: 'complete', content: words(20).join('') });
    await again.kill('SIGTERM');
  }, 30_000);

  it('SIGTERM with an answer longer than the drain: stored as interrupted with exactly what viewers saw', async () => {
    const db = tempDatabaseUrl();
    const proc = await ServerProcess.start(env(db, '300'));
    fake.enqueue({ kind: 'stream', content: words(400), delayMs: 10 });
    const ws = await WsTestClient.connect(proc.wsUrl);
    ws.send({ type: 'user_message', id: 't', content: 'too long' });
    const first = await ws.next((f) => f.type === 'agent_response');
    const exited = proc.kill('SIGTERM');
    const end = await ws.nextOfType('agent_response_end', 5000);
    const seen = ws.frames
      .filter((f) => f.type === 'agent_response')
      .map((f) => f.content)
      .join('');
    expect(end.status).toBe('interrupted');
    expect(end.content).toBe(seen);
    await exited;
    const again = await ServerProcess.start(env(db));
    const { body } = await request(again.url).get(`/api/chats/${first.chat_id}`).expect(200);
    expect(body.messages[1]).toMatchObject({ status: 'interrupted', content: seen });
    await again.kill('SIGTERM');
  }, 30_000);

  it('SIGKILL mid-answer: after restart the answer is interrupted, losing at most the snapshot interval', async () => {
    const db = tempDatabaseUrl();
    const proc = await ServerProcess.start(env(db));
    const pieceMs = 20;
    fake.enqueue({ kind: 'stream', content: words(400), delayMs: pieceMs });
    const ws = await WsTestClient.connect(proc.wsUrl);
    ws.send({ type: 'user_message', id: 't', content: 'crash me' });
    const first = await ws.next((f) => f.type === 'agent_response');
    await sleep(2500);
    await proc.kill('SIGKILL');
    const seen = ws.frames
      .filter((f) => f.type === 'agent_response')
      .map((f) => f.content)
      .join('');
    const again = await ServerProcess.start(env(db));
    const { body } = await request(again.url).get(`/api/chats/${first.chat_id}`).expect(200);
    const stored = body.messages[1];
    expect(stored.status).toBe('interrupted');
    expect(seen.startsWith(stored.content)).toBe(true);
    // At most about one snapshot interval (1 s) of pieces lost, with slack for a loaded machine.
    const lostPieces = (seen.length - stored.content.length) / 'wNN '.length;
    expect(stored.content.length).toBeGreaterThan(0);
    expect(lostPieces).toBeLessThan(1500 / pieceMs);
    const streaming = body.messages.filter((m: { status: string }) => m.status === 'streaming');
    expect(streaming).toEqual([]);
    await again.kill('SIGTERM');
  }, 30_000);
});

/**
 * Two instances on one PostgreSQL and one Redis act as one: whatever instance a client reaches,
 * it sees the same chats, the same live streams and the same limits.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import request from 'supertest';
import { FakeDeepSeek } from './fakes/deepseek.fake';
import { type RunningApp, startApp } from './support/app';
import { TEST_POSTGRES_URL, TEST_REDIS_URL, TEST_SCHEMA_PREFIX } from './support/databases';
import { ServerProcess } from './support/server-process';
import { type AnyFrame, WsTestClient } from './support/ws-client';

const ROOT = join(__dirname, '..');
const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i} `);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('two instances on PostgreSQL and Redis (e2e)', () => {
  let fake: FakeDeepSeek;
  let a: RunningApp;
  let b: RunningApp;
  const run = randomBytes(5).toString('hex');
  const settings = {
    DATABASE_URL: `${TEST_POSTGRES_URL}?schema=${TEST_SCHEMA_PREFIX}scale_${run}`,
    REDIS_URL: TEST_REDIS_URL,
    REDIS_PREFIX: `chattest:${run}:`,
    DEEPSEEK_API_KEY: 'test-key',
    INSTANCE_HEARTBEAT_MS: '200',
    RATE_LIMIT_PER_MINUTE: '1000',
  };

  beforeAll(async () => {
    // The killed-instance test runs the built server as a child process.
    execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT });
    fake = await FakeDeepSeek.start();
    a = await startApp({ ...settings, DEEPSEEK_BASE_URL: fake.baseUrl });
    b = await startApp({ ...settings, DEEPSEEK_BASE_URL: fake.baseUrl });
  }, 120_000);
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await fake?.close();
  });

  async function startTurn(client: WsTestClient, content: string) {
    client.send({ type: 'user_message', id: content, content });
    return client.next((f) => f.type === 'agent_response' && f.seq === 1);
  }
  const text = (frames: AnyFrame[]) =>
    frames
      .filter((f) => f.type === 'agent_response')
      .map((f) => f.content)
      .join('');

  it('reports PostgreSQL and Redis in /health', async () => {
    const { body } = await request(b.url).get('/health').expect(200);
    expect(body).toMatchObject({ status: 'ok', info: { database: { status: 'up' }, redis: { status: 'up' } } });
  });

  it('a chat written through A is read through B', async () => {
    const wa = await WsTestClient.connect(a.wsUrl);
    wa.send({ type: 'user_message', id: 'x', content: 'written on A' });
    const end = await wa.nextOfType('agent_response_end');
    wa.close();
    const { body } = await request(b.url).get(`/api/chats/${end.chat_id}`).expect(200);
    expect(body.messages.map((m: { content: string }) => m.content)).toEqual(['written on A', end.content]);
  });

  it("a viewer on B sees A's stream live, every piece once, in order", async () => {
    fake.enqueue({ kind: 'stream', content: words(30), delayMs: 15 });
    const wa = await WsTestClient.connect(a.wsUrl);
    const first = await startTurn(wa, 'live on A');
    const wb = await WsTestClient.connect(b.wsUrl);
    wb.send({ type: 'subscribe', id: 's', chat_id: first.chat_id });
    await wb.nextOfType('subscribed');
    const seen = await wb.collect((f) => f.type === 'agent_response_end');
    const pieces = seen.filter((f) => f.type === 'agent_response');
    expect(pieces.length).toBeGreaterThan(5);
    expect(pieces.map((f) => f.seq)).toEqual(Array.from({ length: pieces.length }, (_, i) => pieces[0].seq + i));
    expect(seen[seen.length - 1]).toMatchObject({ status: 'complete', content: words(30).join('') });
    wa.close();
    wb.close();
  });

  it('resume on B of a stream running on A is exact', async () => {
    fake.enqueue({ kind: 'stream', content: words(40), delayMs: 15 });
    const wa = await WsTestClient.connect(a.wsUrl);
    const head: AnyFrame[] = [await startTurn(wa, 'resume across')];
    for (;;) {
      const frame = await wa.next((f) => f.type === 'agent_response');
      head.push(frame);
      if (frame.seq === 6) break;
    }
    wa.close();
    await sleep(50);
    const wb = await WsTestClient.connect(b.wsUrl);
    wb.send({ type: 'resume', message_id: head[0].message_id, after_seq: 6 });
    const rest = await wb.collect((f) => f.type === 'agent_response_end');
    const pieces = rest.filter((f) => f.type === 'agent_response');
    expect(pieces[0].seq).toBe(7);
    expect(pieces.map((f) => f.seq)).toEqual(Array.from({ length: pieces.length }, (_, i) => 7 + i));
    const end = rest[rest.length - 1];
    expect(text(head) + text(pieces)).toBe(end.content);
    expect(end).toMatchObject({ status: 'complete', content: words(40).join('') });
    wb.close();
  });

  it("stop sent to B stops A's model request", async () => {
    fake.enqueue({ kind: 'stream', content: words(300), delayMs: 15 });
    const aborted = fake.aborted;
    const wa = await WsTestClient.connect(a.wsUrl);
    const first = await startTurn(wa, 'stop me from B');
    const wb = await WsTestClient.connect(b.wsUrl);
    wb.send({ type: 'stop', id: 'st', message_id: first.message_id });
    const end = await wa.nextOfType('agent_response_end', 5000);
    expect(end.status).toBe('stopped');
    await fake.waitForAborted(aborted + 1);
    expect(wb.frames.filter((f) => f.type === 'error')).toEqual([]);
    wa.close();
    wb.close();
  });

  it('shares the rate limit between instances', async () => {
    const limited = await startApp({ ...settings, REDIS_PREFIX: `chattest:${run}:rl:`, DEEPSEEK_BASE_URL: fake.baseUrl, RATE_LIMIT_PER_MINUTE: '2' });
    const other = await startApp({ ...settings, REDIS_PREFIX: `chattest:${run}:rl:`, DEEPSEEK_BASE_URL: fake.baseUrl, RATE_LIMIT_PER_MINUTE: '2' });
    try {
      const w1 = await WsTestClient.connect(limited.wsUrl);
      const w2 = await WsTestClient.connect(other.wsUrl);
      for (const id of ['one', 'two']) {
        w1.send({ type: 'user_message', id, content: id });
        await w1.next((f) => f.type === 'agent_response_end' && f.id === id);
      }
      w2.send({ type: 'user_message', id: 'three', content: 'three' });
      expect(await w2.nextOfType('error')).toMatchObject({ code: 'rate_limited', id: 'three' });
      w1.close();
      w2.close();
    } finally {
      await limited.close();
      await other.close();
    }
  });

  it('refuses to start with a clear error when Redis cannot be reached', async () => {
    await expect(startApp({ ...settings, REDIS_URL: 'redis://127.0.0.1:1', DEEPSEEK_BASE_URL: fake.baseUrl })).rejects.toThrow(/cannot reach Redis/);
  });

  it('refuses to start with a clear error when PostgreSQL cannot be reached', async () => {
    await expect(startApp({ ...settings, DATABASE_URL: 'postgres://postgres@127.0.0.1:1/test', DEEPSEEK_BASE_URL: fake.baseUrl })).rejects.toThrow(
      /cannot reach PostgreSQL/,
    );
  });

  it('an instance killed mid-answer: B marks it interrupted within seconds and its viewers get the end', async () => {
    const proc = await ServerProcess.start({ ...settings, AUTH_MODE: 'none', DEEPSEEK_BASE_URL: fake.baseUrl });
    try {
      fake.enqueue({ kind: 'stream', content: words(500), delayMs: 15 });
      const wa = await WsTestClient.connect(proc.wsUrl);
      const first = await startTurn(wa, 'crash on A');

      const wb = await WsTestClient.connect(b.wsUrl);
      wb.send({ type: 'subscribe', chat_id: first.chat_id });
      await wb.nextOfType('subscribed');
      await wb.next((f) => f.type === 'agent_response' && f.seq >= 10);
      const killedAt = Date.now();
      await proc.kill('SIGKILL');
      const seenOnB = wb.frames.filter((f) => f.type === 'agent_response');

      const end = await wb.nextOfType('agent_response_end', 60_000);
      const tookMs = Date.now() - killedAt;
      expect(end.status).toBe('interrupted');
      // The shared log kept every piece the dead instance sent: nothing it showed is lost.
      expect(end.content.startsWith(words(10).join(''))).toBe(true);
      expect(end.content.length).toBeGreaterThanOrEqual(text(seenOnB).length - 1);
      expect(tookMs).toBeLessThan(60_000);
      const { body } = await request(b.url).get(`/api/chats/${first.chat_id}`).expect(200);
      expect(body.messages[1]).toMatchObject({ status: 'interrupted', content: end.content });
      wa.close();
      wb.close();
    } finally {
      if (proc.child.exitCode === null && proc.child.signalCode === null) await proc.kill('SIGKILL');
    }
  }, 90_000);
});

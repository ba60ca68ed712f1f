/**
 * Issue 20 on the wire: a retried model request is announced to the chat's viewers
 * (`agent_retry`, never stored), and a new chat gets a generated title after its first answer
 * (`chat_updated`), with the first line as the fallback and a user's rename never overwritten.
 */
import request from 'supertest';
import { FakeDeepSeek } from './fakes/deepseek.fake';
import { RunningApp, startApp, tempDatabaseUrl } from './support/app';
import { WsTestClient } from './support/ws-client';

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
        const types = list.filter((f) => f.id === 'r1').map((f) => f.type).join(' ');
        expect(types).toMatch(/^(user_message )?agent_response_start agent_retry agent_retry (agent_response )+agent_response_end$/);
      }
      const retries = frames.filter((f) => f.type === 'agent_retry');
      const start = frames.find((f) => f.type === 'agent_response_start')!;
      expect(retries).toEqual([
        { type: 'agent_retry', id: 'r1', chat_id: chatId, message_id: start.message_id, attempt: 2, max_attempts: 4, retry_in_ms: expect.any(Number), reason: 'upstream_unavailable' },
        { type: 'agent_retry', id: 'r1', chat_id: chatId, message_id: start.message_id, attempt: 3, max_attempts: 4, retry_in_ms: expect.any(Number), reason: 'upstream_unavailable' },
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

  async function newChat(content: string): Promise<string> {
    client.send({ type: 'user_message', id: `new-${content}`, content });
    const frames = await turnFrames(`new-${content}`);
    return frames[0].chat_id as string;
  }
});

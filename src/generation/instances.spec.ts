import { Logger } from '@nestjs/common';
import type { Environment } from '../config/environment';
import type { RedisService } from '../redis/redis.service';
import type { MessagesRepository } from '../storage/messages.repository';
import type { Fanout } from '../transport/fanout';
import type { Frame } from '../transport/frames';
import type { Generation } from './generation';
import type { GenerationLog } from './generation-log';
import { RedisInstances, type RunningAnswers } from './instances';

/**
 * RedisInstances after a stall (its heartbeat unconfirmed for the key's lifetime): it holds every
 * frame, reads which of its answers are no longer streaming, and drops those another instance ended.
 * An answer that began its own end is not one of them, though its row is no longer streaming either.
 */
describe('RedisInstances after a stall', () => {
  const HEARTBEAT_MS = 1000;
  const published: Frame[] = [];
  const redis = {
    instanceId: 'me',
    key: (...parts: string[]) => parts.join(':'),
    client: { set: async () => 'OK', exists: async () => 1, del: async () => 1 },
    subscribe: async () => undefined,
    onReconnect: () => undefined,
  } as unknown as RedisService;
  // Both rows are no longer streaming: one ended by another instance, one by its own end.
  const messages = {
    findById: async (id: string) => ({ id, status: id === 'swept' ? 'interrupted' : 'complete' }),
    listStreamingElsewhere: async () => [],
  } as unknown as MessagesRepository;
  const fanout = { publish: (_room: string, frame: Frame) => void published.push(frame) } as unknown as Fanout;
  const generation = (messageId: string, ending: boolean) =>
    ({ messageId, ending, abandoned: false, spec: { room: 'chat:c1' } }) as unknown as Generation & { abandoned: boolean };

  beforeAll(() => Logger.overrideLogger(false));
  afterEach(() => jest.restoreAllMocks());

  it('drops the answer another instance ended; one that began its own end keeps it and its end frame goes out', async () => {
    const swept = generation('swept', false);
    const own = generation('own', true);
    const abandoned: string[] = [];
    const answers: RunningAnswers = {
      values: () => [swept, own],
      stop: () => false,
      abandon: (g) => {
        abandoned.push(g.messageId);
        (g as Generation & { abandoned: boolean }).abandoned = true;
      },
    };
    const instances = new RedisInstances(redis, { INSTANCE_HEARTBEAT_MS: HEARTBEAT_MS } as Environment, messages, {} as GenerationLog, fanout);
    await instances.start(answers);
    try {
      // Past the key's lifetime (three beats) without a confirmed beat: the next frame finds it stalled.
      const now = Date.now();
      jest.spyOn(Date, 'now').mockReturnValue(now + 4 * HEARTBEAT_MS);
      const end: Frame = { type: 'agent_response_end', message_id: 'own', status: 'complete' };
      expect(instances.hold(own, end)).toBe(true);
      expect(instances.hold(swept, { type: 'agent_response', message_id: 'swept', seq: 9 })).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(abandoned).toEqual(['swept']);
      expect(published).toEqual([end]);
    } finally {
      await instances.shutdown();
    }
  });
});

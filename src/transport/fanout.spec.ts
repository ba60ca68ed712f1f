import type { WebSocket } from 'ws';
import type { RedisService } from '../redis/redis.service';
import { ConnectionRegistry } from './connection-registry';
import { RedisFanout } from './fanout';
import type { Frame } from './frames';

/**
 * RedisFanout's subscriber side, with Redis stood in for by the handlers it subscribes: what another
 * instance published reaches this instance's sockets in the room, but never a piece or an end of a
 * stream after its end (late frames of an instance that was cut off from Redis and taken for dead).
 */
describe('RedisFanout (subscriber side)', () => {
  const handlers = new Map<string, (message: string) => void>();
  const redis = {
    key: (...parts: string[]) => `t:${parts.join(':')}`,
    subscribe: async (channel: string, handler: (message: string) => void) => void handlers.set(channel, handler),
    unsubscribe: async (channel: string) => void handlers.delete(channel),
    publish: jest.fn(),
  } as unknown as RedisService;
  let registry: ConnectionRegistry;
  let socket: { readyState: number; send: jest.Mock };

  beforeEach(async () => {
    handlers.clear();
    registry = new ConnectionRegistry();
    const fanout = new RedisFanout(registry, redis);
    socket = { readyState: 1, send: jest.fn() };
    await fanout.join(registry.add(socket as unknown as WebSocket).id, 'chat:c1');
  });

  const fromRedis = (frame: Frame) => handlers.get('t:room:chat:c1')!(JSON.stringify(frame));
  const received = () => socket.send.mock.calls.map(([data]) => JSON.parse(data as string) as Frame);
  const piece = (seq: number, message_id = 'm1'): Frame => ({ type: 'agent_response', chat_id: 'c1', message_id, seq, content: `p${seq}` });
  const end = (status: string, seq: number, message_id = 'm1'): Frame => ({ type: 'agent_response_end', chat_id: 'c1', message_id, seq, status });

  it('drops the pieces and a second end that come after a stream ended; other frames naming it pass', () => {
    fromRedis(piece(1));
    fromRedis(piece(2));
    fromRedis(end('interrupted', 2)); // another instance ended it (its own was taken for dead)
    fromRedis(piece(3)); // what the cut-off instance had queued, arriving once its link healed
    fromRedis(end('complete', 3));
    fromRedis({ type: 'feedback', chat_id: 'c1', message_id: 'm1', value: 'up' }); // not a stream frame
    fromRedis(piece(1, 'm2')); // another answer goes on
    expect(received().map((f) => `${f.type}:${String(f.message_id)}:${String(f.seq ?? f.value)}`)).toEqual([
      'agent_response:m1:1',
      'agent_response:m1:2',
      'agent_response_end:m1:2',
      'feedback:m1:up',
      'agent_response:m2:1',
    ]);
  });

  it('a Solver run alike: nothing of it after its solver_complete', () => {
    fromRedis({ type: 'solver_reasoning', run_id: 'r1', seq: 1, content: 'x' });
    fromRedis({ type: 'solver_complete', run_id: 'r1', status: 'interrupted' });
    fromRedis({ type: 'solver_reasoning', run_id: 'r1', seq: 2, content: 'y' });
    expect(received().map((f) => f.type)).toEqual(['solver_reasoning', 'solver_complete']);
  });
});

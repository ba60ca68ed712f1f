import type { AddressInfo, Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { WebSocket as RealWebSocket, WebSocketServer } from 'ws';
import { ConnectionRegistry, connectionIdOf } from './connection-registry';
import type { Frame } from './frames';

interface FakeSocket {
  readyState: number;
  send: jest.Mock;
}

const fakeSocket = (readyState = 1): FakeSocket => ({ readyState, send: jest.fn() });
const asWs = (s: FakeSocket) => s as unknown as WebSocket;
/** Frames a fake socket was sent, parsed. */
const sent = (s: FakeSocket): Frame[] => s.send.mock.calls.map(([data]) => JSON.parse(data as string) as Frame);

const piece = (seq: number, messageId = 'm1', type = 'agent_response'): Frame => ({
  type,
  chat_id: 'c1',
  message_id: messageId,
  seq,
  content: `p${seq}`,
});

describe('ConnectionRegistry', () => {
  let registry: ConnectionRegistry;

  beforeEach(() => {
    registry = new ConnectionRegistry();
  });

  it('gives each socket its own id, readable back with connectionIdOf', () => {
    const a = fakeSocket();
    const b = fakeSocket();
    const ca = registry.add(asWs(a));
    const cb = registry.add(asWs(b));
    expect(ca.id).not.toBe(cb.id);
    expect(connectionIdOf(asWs(a))).toBe(ca.id);
    expect(connectionIdOf(asWs(b))).toBe(cb.id);
    expect(registry.get(ca.id)).toBe(ca);
    expect(registry.size).toBe(2);
    expect([...registry.all()]).toEqual([ca, cb]);
  });

  it('keeps the user the upgrade check found; userOf throws for a socket without one or a gone connection', () => {
    const withUser = registry.add(asWs(fakeSocket()), { id: 'user-1', sessionKey: 'sess' });
    const anonymous = registry.add(asWs(fakeSocket()));
    expect(registry.userOf(withUser.id)).toEqual({ id: 'user-1', sessionKey: 'sess' });
    expect(() => registry.userOf(anonymous.id)).toThrow(`connection ${anonymous.id} has no user`);
    registry.remove(withUser.id);
    expect(() => registry.userOf(withUser.id)).toThrow('has no user');
  });

  describe('per-user socket count', () => {
    it('is exact after each add and remove, per user, and a second remove changes nothing', () => {
      const a1 = registry.add(asWs(fakeSocket()), { id: 'alice', sessionKey: 's1' });
      const a2 = registry.add(asWs(fakeSocket()), { id: 'alice', sessionKey: 's2' });
      const b1 = registry.add(asWs(fakeSocket()), { id: 'bob' });
      registry.add(asWs(fakeSocket()));
      expect([registry.countFor('alice'), registry.countFor('bob'), registry.countFor('carol')]).toEqual([2, 1, 0]);
      registry.remove(a1.id);
      expect(registry.countFor('alice')).toBe(1);
      registry.remove(a1.id);
      expect(registry.countFor('alice')).toBe(1);
      registry.remove(a2.id);
      registry.remove(b1.id);
      expect([registry.countFor('alice'), registry.countFor('bob')]).toEqual([0, 0]);
      const again = registry.add(asWs(fakeSocket()), { id: 'alice', sessionKey: 's3' });
      expect(registry.countFor('alice')).toBe(1);
      expect(registry.userOf(again.id)).toEqual({ id: 'alice', sessionKey: 's3' });
    });

    it('sockets of one session share one user object; another session of the user keeps its own', () => {
      const tab1 = registry.add(asWs(fakeSocket()), { id: 'alice', sessionKey: 's1', username: 'Alice' } as never);
      const tab2 = registry.add(asWs(fakeSocket()), { id: 'alice', sessionKey: 's1', username: 'Alice' } as never);
      const phone = registry.add(asWs(fakeSocket()), { id: 'alice', sessionKey: 's2' });
      expect(registry.userOf(tab1.id)).toBe(registry.userOf(tab2.id));
      // Only what the server reads of a socket's user is kept.
      expect(registry.userOf(tab1.id)).toEqual({ id: 'alice', sessionKey: 's1' });
      expect(registry.userOf(phone.id)).toEqual({ id: 'alice', sessionKey: 's2' });
    });
  });

  it('publish serializes the frame once and sends it to every member of the room only', () => {
    const a = fakeSocket();
    const b = fakeSocket();
    const outsider = fakeSocket();
    const ca = registry.add(asWs(a));
    const cb = registry.add(asWs(b));
    const co = registry.add(asWs(outsider));
    registry.join(ca.id, 'chat:1');
    registry.join(cb.id, 'chat:1');
    registry.join(co.id, 'chat:2');

    const stringify = jest.spyOn(JSON, 'stringify');
    const frame = { type: 'user_message', chat_id: '1', message_id: 'u1', content: 'hi' };
    registry.publish('chat:1', frame);
    expect(stringify).toHaveBeenCalledTimes(1);
    stringify.mockRestore();

    const data = JSON.stringify(frame);
    expect(a.send.mock.calls).toEqual([[data]]);
    expect(b.send.mock.calls).toEqual([[data]]);
    expect(a.send.mock.calls[0][0]).toBe(b.send.mock.calls[0][0]);
    expect(outsider.send).not.toHaveBeenCalled();
  });

  it('publish to a room nobody watches sends nothing and does not serialize', () => {
    const a = fakeSocket();
    registry.add(asWs(a));
    const stringify = jest.spyOn(JSON, 'stringify');
    registry.publish('chat:empty', { type: 'x' });
    expect(stringify).not.toHaveBeenCalled();
    stringify.mockRestore();
    expect(a.send).not.toHaveBeenCalled();
  });

  it('does not write to a socket that is closing or closed', () => {
    const open = fakeSocket(1);
    const closing = fakeSocket(2);
    const closed = fakeSocket(3);
    for (const s of [open, closing, closed]) registry.join(registry.add(asWs(s)).id, 'room');
    registry.publish('room', { type: 'x' });
    expect(open.send).toHaveBeenCalledTimes(1);
    expect(closing.send).not.toHaveBeenCalled();
    expect(closed.send).not.toHaveBeenCalled();
    expect(registry.send(connectionIdOf(asWs(closed)), { type: 'y' })).toBe(false);
  });

  it('send goes to one connection; false for an unknown id', () => {
    const a = fakeSocket();
    const b = fakeSocket();
    const ca = registry.add(asWs(a));
    registry.add(asWs(b));
    expect(registry.send(ca.id, { type: 'pong', id: 'p' })).toBe(true);
    expect(sent(a)).toEqual([{ type: 'pong', id: 'p' }]);
    expect(b.send).not.toHaveBeenCalled();
    expect(registry.send('unknown', { type: 'pong' })).toBe(false);
  });

  describe('seq guard', () => {
    let socket: FakeSocket;
    let id: string;

    beforeEach(() => {
      socket = fakeSocket();
      id = registry.add(asWs(socket)).id;
      registry.join(id, 'room');
    });

    it('never sends the same seq of a message twice to a connection', () => {
      registry.publish('room', piece(1));
      registry.publish('room', piece(2, 'm1', 'agent_reasoning'));
      expect(registry.send(id, piece(2))).toBe(false); // replayed while live: duplicate
      expect(registry.send(id, piece(1))).toBe(false); // sent already
      registry.publish('room', piece(2));
      expect(registry.send(id, piece(3))).toBe(true);
      registry.publish('room', piece(3));
      registry.publish('room', piece(4));
      expect(sent(socket).map((f) => [f.type, f.seq])).toEqual([
        ['agent_response', 1],
        ['agent_reasoning', 2],
        ['agent_response', 3],
        ['agent_response', 4],
      ]);
    });

    it('guards each message separately', () => {
      registry.publish('room', piece(5, 'm1'));
      registry.publish('room', piece(1, 'm2'));
      registry.publish('room', piece(2, 'm2'));
      registry.publish('room', piece(5, 'm1'));
      expect(sent(socket).map((f) => `${f.message_id}:${f.seq}`)).toEqual(['m1:5', 'm2:1', 'm2:2']);
    });

    it('guards per connection: a new viewer still gets seqs another one already had', () => {
      registry.publish('room', piece(1));
      const late = fakeSocket();
      const lateId = registry.add(asWs(late)).id;
      expect(registry.send(lateId, piece(1))).toBe(true);
      expect(sent(late).map((f) => f.seq)).toEqual([1]);
    });

    it('agent_response_end is always delivered and clears the guard of its message', () => {
      registry.publish('room', piece(1));
      registry.publish('room', piece(2));
      const end = { type: 'agent_response_end', chat_id: 'c1', message_id: 'm1', seq: 2, status: 'complete', content: 'p1p2' };
      registry.publish('room', end);
      expect(registry.get(id)!.sentSeq?.has('m1') ?? false).toBe(false);
      // a later resume replays from the start: accepted again, end included
      expect(registry.send(id, piece(1))).toBe(true);
      expect(registry.send(id, end)).toBe(true);
      expect(sent(socket).map((f) => [f.type, f.seq])).toEqual([
        ['agent_response', 1],
        ['agent_response', 2],
        ['agent_response_end', 2],
        ['agent_response', 1],
        ['agent_response_end', 2],
      ]);
    });

    it('frames of a message without seq (user_message, error) pass the guard untouched', () => {
      registry.publish('room', piece(3));
      registry.publish('room', { type: 'error', code: 'upstream_timeout', message: 't', message_id: 'm1' });
      registry.publish('room', { type: 'error', code: 'upstream_timeout', message: 't', message_id: 'm1' });
      expect(sent(socket).map((f) => f.type)).toEqual(['agent_response', 'error', 'error']);
      expect(registry.get(id)!.sentSeq?.get('m1')).toEqual([3, 3]);
    });
  });

  describe('hold while a replay is read', () => {
    let socket: FakeSocket;
    let id: string;
    const end = { type: 'agent_response_end', chat_id: 'c1', message_id: 'm1', seq: 4, status: 'complete', content: 'p1p2p3p4' };

    beforeEach(() => {
      socket = fakeSocket();
      id = registry.add(asWs(socket)).id;
      registry.join(id, 'room');
    });

    it('live frames of the held message wait, the replay passes, and release sends only what the replay lacked', () => {
      registry.hold(id, 'm1');
      registry.publish('room', piece(3));
      registry.publish('room', piece(4));
      registry.publish('room', piece(1, 'other')); // another message is not held
      expect(sent(socket).map((f) => `${f.message_id}:${f.seq}`)).toEqual(['other:1']);

      registry.sendReplay(id, piece(2));
      registry.sendReplay(id, piece(3));
      registry.release(id, 'm1');
      registry.publish('room', piece(5));
      expect(sent(socket).map((f) => `${f.message_id}:${f.seq}`)).toEqual(['other:1', 'm1:2', 'm1:3', 'm1:4', 'm1:5']);
    });

    it('a replay that ends the message is final: held live frames are not sent after its agent_response_end', () => {
      registry.hold(id, 'm1');
      registry.publish('room', piece(4)); // live, while the replay is read
      registry.publish('room', end);
      for (const seq of [2, 3, 4]) registry.sendReplay(id, piece(seq));
      registry.sendReplay(id, end);
      registry.release(id, 'm1');
      expect(sent(socket).map((f) => `${f.type}:${f.seq}`)).toEqual(['agent_response:2', 'agent_response:3', 'agent_response:4', 'agent_response_end:4']);
    });

    it('a gap of lost live frames is refilled by the replay; nothing it sent before is sent again', () => {
      for (const seq of [1, 2, 5]) registry.publish('room', piece(seq)); // 3 and 4 lost on the way (Redis restarted)
      registry.hold(id, 'm1'); // the page saw 5 after 2 and asks from 2
      registry.publish('room', piece(6)); // live, while the replay is read
      for (const seq of [3, 4, 5]) registry.sendReplay(id, piece(seq));
      registry.release(id, 'm1');
      registry.publish('room', piece(6)); // a late copy of a live frame
      registry.publish('room', piece(7));
      for (const seq of [1, 2, 3, 4, 5, 6, 7]) registry.sendReplay(id, piece(seq)); // a resume from 0: all sent already
      expect(sent(socket).map((f) => f.seq)).toEqual([1, 2, 5, 3, 4, 6, 7]);
    });

    it('a viewer that came in mid-stream gets the pieces before its first by a replay, each once', () => {
      registry.publish('room', piece(26));
      registry.publish('room', piece(27));
      registry.hold(id, 'm1');
      for (let seq = 11; seq <= 27; seq++) registry.sendReplay(id, piece(seq)); // the page rendered up to 10
      registry.release(id, 'm1');
      // Gaps filled out of order join what is around them.
      for (const seq of [30, 32, 31, 29, 28, 33]) registry.publish('room', piece(seq));
      registry.sendReplay(id, piece(1));
      for (let seq = 1; seq <= 33; seq++) registry.sendReplay(id, piece(seq));
      expect(sent(socket).map((f) => f.seq)).toEqual([
        26, 27, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 30, 32, 31, 29, 28, 33, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
      ]);
      expect(registry.get(id)!.sentSeq?.get('m1')).toEqual([1, 33]);
    });

    it('release without hold, or of a gone connection, does nothing', () => {
      expect(() => registry.release(id, 'm1')).not.toThrow();
      expect(() => registry.release('gone', 'm1')).not.toThrow();
      registry.publish('room', piece(1));
      expect(sent(socket).map((f) => f.seq)).toEqual([1]);
    });
  });

  it('tells the room listener when a room gets its first member here and loses its last', () => {
    const events: string[] = [];
    registry.onRoomActivity((room, active) => events.push(`${room}:${active ? 'on' : 'off'}`));
    const a = registry.add(asWs(fakeSocket())).id;
    const b = registry.add(asWs(fakeSocket())).id;
    registry.join(a, 'r');
    registry.join(b, 'r');
    expect(registry.hasRoom('r')).toBe(true);
    registry.leave(a, 'r');
    registry.remove(b);
    expect(registry.hasRoom('r')).toBe(false);
    expect(events).toEqual(['r:on', 'r:off']);
  });

  it('remove() takes the connection out of every room and forgets it', () => {
    const a = fakeSocket();
    const b = fakeSocket();
    const ca = registry.add(asWs(a));
    const cb = registry.add(asWs(b));
    registry.join(ca.id, 'r1');
    registry.join(ca.id, 'r2');
    registry.join(cb.id, 'r1');

    registry.remove(ca.id);

    expect(registry.get(ca.id)).toBeUndefined();
    expect(registry.size).toBe(1);
    expect(registry.isInRoom(ca.id, 'r1')).toBe(false);
    registry.publish('r1', { type: 'x' });
    registry.publish('r2', { type: 'y' });
    expect(a.send).not.toHaveBeenCalled();
    expect(sent(b)).toEqual([{ type: 'x' }]);
    expect(() => registry.remove(ca.id)).not.toThrow();
  });

  it('join is idempotent, leave stops delivery, isInRoom tells membership', () => {
    const a = fakeSocket();
    const ca = registry.add(asWs(a));
    registry.join(ca.id, 'r');
    registry.join(ca.id, 'r');
    expect(registry.isInRoom(ca.id, 'r')).toBe(true);
    registry.publish('r', { type: 'once' });
    expect(a.send).toHaveBeenCalledTimes(1);

    registry.leave(ca.id, 'r');
    expect(registry.isInRoom(ca.id, 'r')).toBe(false);
    registry.publish('r', { type: 'after-leave' });
    expect(a.send).toHaveBeenCalledTimes(1);

    registry.join('unknown-connection', 'r');
    expect(registry.isInRoom('unknown-connection', 'r')).toBe(false);
  });

  it('broadcast sends to every open connection, in or out of rooms', () => {
    const a = fakeSocket();
    const b = fakeSocket();
    const closed = fakeSocket(3);
    registry.join(registry.add(asWs(a)).id, 'r');
    registry.add(asWs(b));
    registry.add(asWs(closed));
    registry.broadcast({ type: 'notice', text: 'hello' });
    expect(sent(a)).toEqual([{ type: 'notice', text: 'hello' }]);
    expect(sent(b)).toEqual([{ type: 'notice', text: 'hello' }]);
    expect(closed.send).not.toHaveBeenCalled();
  });
});

describe('ConnectionRegistry over a real socket: one TCP write per tick', () => {
  let server: WebSocketServer;
  let client: RealWebSocket;
  let registry: ConnectionRegistry;
  let connectionId: string;
  /** Calls into the server side's TCP socket (a corked socket writes what waited in one `_writev`). */
  let writes: jest.SpyInstance[];
  const received: Frame[] = [];
  const writeCalls = () => writes.reduce((n, spy) => n + spy.mock.calls.length, 0);
  const tick = () => new Promise((resolve) => setImmediate(resolve));
  const until = async (n: number) => {
    for (let i = 0; i < 200 && received.length < n; i++) await new Promise((resolve) => setTimeout(resolve, 5));
  };

  beforeEach(async () => {
    received.length = 0;
    registry = new ConnectionRegistry();
    server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((resolve) => server.once('listening', resolve));
    const accepted = new Promise<RealWebSocket>((resolve) => server.once('connection', resolve));
    client = new RealWebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
    client.on('message', (data) => received.push(JSON.parse(String(data)) as Frame));
    const socket = await accepted;
    await new Promise((resolve) => client.once('open', resolve));
    connectionId = registry.add(socket).id;
    const raw = (socket as unknown as { _socket: Socket })._socket;
    writes = [jest.spyOn(raw, '_writev' as never), jest.spyOn(raw, '_write' as never)];
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    client.close();
    await new Promise((resolve) => server.close(resolve));
  });

  it('frames sent in one tick, promise callbacks included, leave in one write, in order', async () => {
    registry.send(connectionId, { type: 'chat_created', chat_id: 'c1' });
    registry.send(connectionId, { type: 'user_message', chat_id: 'c1' });
    await Promise.resolve();
    registry.send(connectionId, { type: 'agent_response_start', chat_id: 'c1', message_id: 'm1' });
    await tick();
    expect(writeCalls()).toBe(1);
    await until(3);
    expect(received.map((f) => f.type)).toEqual(['chat_created', 'user_message', 'agent_response_start']);
  });

  it('flushWrites writes what waits now: a frame sent just before a terminate still arrives', async () => {
    registry.send(connectionId, { type: 'agent_response_end', chat_id: 'c1', message_id: 'm1' });
    registry.flushWrites();
    registry.get(connectionId)!.socket.terminate();
    await until(1);
    expect(received.map((f) => f.type)).toEqual(['agent_response_end']);
  });

  it('a frame does not wait past its tick: frames of later ticks are written on their own', async () => {
    registry.send(connectionId, piece(1));
    await tick();
    expect(writeCalls()).toBe(1);
    await until(1);
    expect(received.map((f) => f.seq)).toEqual([1]);
    registry.send(connectionId, piece(2));
    await tick();
    expect(writeCalls()).toBe(2);
    await until(2);
    expect(received.map((f) => f.seq)).toEqual([1, 2]);
  });
});

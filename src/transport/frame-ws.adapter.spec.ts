import { CallHandler, CanActivate, INestApplication, Injectable, Module, NestInterceptor, UseGuards, UseInterceptors } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ConnectedSocket, MessageBody, OnGatewayConnection, OnGatewayDisconnect, SubscribeMessage } from '@nestjs/websockets';
import { IsString } from 'class-validator';
import { concat, map, Observable, of, throwError } from 'rxjs';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { upgradeStatus, WsTestClient } from '../../test/support/ws-client';
import { AuthService } from '../auth/auth.service';
import { HostCheck } from '../auth/host-check';
import { RateLimits } from '../auth/rate-limits';
import { RedisService } from '../redis/redis.service';
import { UpgradeAuth } from '../auth/upgrade-auth';
import { UserResolver } from '../auth/user-resolver';
import { AppError } from '../common/app-error';
import { Environment } from '../config/environment';
import { UsersRepository } from '../storage/users.repository';
import { ConnectionRegistry, connectionIdOf } from './connection-registry';
import { directHandler } from './direct-handler';
import { FrameGateway } from './frame-gateway.decorator';
import { FrameWsAdapter } from './frame-ws.adapter';
import { WS_PATH } from './ws-path';

class EchoDto {
  @IsString()
  text!: string;
}

/** Gateway A: two types, connection hooks, a reply, a validated body and a thrown error. */
@FrameGateway()
class GatewayA implements OnGatewayConnection, OnGatewayDisconnect {
  readonly seen: Array<{ type: string; connectionId: string }> = [];
  readonly connected: string[] = [];
  readonly disconnected: string[] = [];

  @SubscribeMessage('a_echo')
  echo(@MessageBody() dto: EchoDto, @ConnectedSocket() socket: WebSocket): object {
    this.seen.push({ type: 'a_echo', connectionId: connectionIdOf(socket) });
    return { type: 'a_echoed', text: dto.text, connection_id: connectionIdOf(socket) };
  }

  @SubscribeMessage('a_fail')
  async fail(@ConnectedSocket() socket: WebSocket): Promise<void> {
    this.seen.push({ type: 'a_fail', connectionId: connectionIdOf(socket) });
    throw new AppError('not_found', 'nothing here');
  }

  handleConnection(socket: WebSocket): void {
    this.connected.push(connectionIdOf(socket));
  }

  handleDisconnect(socket: WebSocket): void {
    this.disconnected.push(connectionIdOf(socket));
  }
}

/** Gateway B: one type, no hooks. */
@FrameGateway()
class GatewayB {
  readonly seen: Array<{ type: string; connectionId: string }> = [];

  @SubscribeMessage('b_note')
  note(@ConnectedSocket() socket: WebSocket): void {
    this.seen.push({ type: 'b_note', connectionId: connectionIdOf(socket) });
  }

  /** What a handler returns, each kind: an Observable (nulls skipped), a promise, null, a failing Observable. */
  @SubscribeMessage('b_stream')
  stream(): Observable<object | null> {
    return of({ type: 'b_piece', n: 1 }, null, { type: 'b_piece', n: 2 });
  }

  @SubscribeMessage('b_later')
  async later(): Promise<object> {
    await new Promise((resolve) => setImmediate(resolve));
    return { type: 'b_done' };
  }

  @SubscribeMessage('b_nothing')
  nothing(): null {
    return null;
  }

  @SubscribeMessage('b_broken')
  broken(): Observable<object> {
    return concat(
      of({ type: 'b_piece', n: 0 }),
      throwError(() => new AppError('conflict', 'stream broke')),
    );
  }
}

/** A guard that lets nothing through, counting its calls. */
@Injectable()
class ClosedGuard implements CanActivate {
  static calls = 0;
  canActivate(): boolean {
    ClosedGuard.calls++;
    return false;
  }
}

/** An interceptor that marks every reply. */
@Injectable()
class MarkInterceptor implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(map((reply: object) => ({ ...reply, intercepted: true })));
  }
}

/** Gateway C: handlers with enhancers a host app might add; Nest's own pipeline runs them. */
@FrameGateway()
class GatewayC {
  readonly seen: string[] = [];

  @SubscribeMessage('c_guarded')
  @UseGuards(ClosedGuard)
  guarded(): object {
    this.seen.push('c_guarded');
    return { type: 'c_reply' };
  }

  @SubscribeMessage('c_intercepted')
  @UseInterceptors(MarkInterceptor)
  intercepted(@MessageBody() dto: EchoDto): object {
    return { type: 'c_reply', text: dto.text };
  }
}

@Module({ providers: [ConnectionRegistry, GatewayA, GatewayB, GatewayC] })
class TestModule {}

const waitFor = async (check: () => boolean, timeoutMs = 3000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

describe('FrameWsAdapter', () => {
  let app: INestApplication;
  let registry: ConnectionRegistry;
  let a: GatewayA;
  let b: GatewayB;
  let url: string;
  const clients: WsTestClient[] = [];

  const connect = async (options?: WebSocket.ClientOptions): Promise<WsTestClient> => {
    const client = await WsTestClient.connect(url, options);
    clients.push(client);
    return client;
  };
  /** The server's side of a client's socket. */
  const serverSocket = (client: WsTestClient): WebSocket => registry.get(client.connectionId)!.socket;

  beforeEach(async () => {
    app = await NestFactory.create(TestModule, { logger: false });
    registry = app.get(ConnectionRegistry);
    app.useWebSocketAdapter(new FrameWsAdapter(app, registry, { maxPayload: 4096, pingIntervalMs: 100 }));
    await app.listen(0, '127.0.0.1');
    url = `ws://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}${WS_PATH}`;
    a = app.get(GatewayA);
    b = app.get(GatewayB);
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.socket.terminate();
    await app.close();
  });

  it('gives each socket one message and one close listener, whatever the number of gateways', async () => {
    const client = await connect();
    const socket = serverSocket(client);
    expect(socket.listenerCount('message')).toBe(1);
    expect(socket.listenerCount('close')).toBe(1);
    // Shared functions: a second socket carries the very same listeners.
    const other = serverSocket(await connect());
    for (const event of ['message', 'close', 'pong', 'error']) {
      expect(other.listeners(event)).toEqual(socket.listeners(event));
      expect(other.listenerCount(event)).toBe(1);
    }
  });

  it('routes a frame to the gateway of its type, with the socket it came from', async () => {
    const one = await connect();
    const two = await connect();
    two.send({ type: 'b_note', id: 'n1' });
    one.send({ type: 'a_echo', id: 'e1', text: 'hi' });
    expect(await one.next((f) => f.type === 'a_echoed')).toEqual({ type: 'a_echoed', text: 'hi', connection_id: one.connectionId });
    await waitFor(() => b.seen.length === 1);
    expect(a.seen).toEqual([{ type: 'a_echo', connectionId: one.connectionId }]);
    expect(b.seen).toEqual([{ type: 'b_note', connectionId: two.connectionId }]);
  });

  it('answers an unknown type, a missing field and a thrown error with error frames; the socket stays open', async () => {
    const client = await connect();
    client.send({ type: 'c_nothing', id: 'u1' });
    expect(await client.next((f) => f.type === 'error')).toMatchObject({ code: 'unknown_type', id: 'u1' });
    client.send({ type: 'a_echo', id: 'v1' });
    expect(await client.next((f) => f.type === 'error')).toMatchObject({ code: 'invalid_message', id: 'v1', field: 'text' });
    client.send({ type: 'a_fail', id: 'f1' });
    expect(await client.next((f) => f.type === 'error')).toMatchObject({ code: 'not_found', id: 'f1' });
    client.send('{not json');
    expect(await client.next((f) => f.type === 'error')).toMatchObject({ code: 'invalid_json' });
    client.send({ type: 'ping', id: 'p1' });
    expect(await client.next((f) => f.type === 'pong')).toEqual({ type: 'pong', id: 'p1' });
    expect(client.socket.readyState).toBe(WebSocket.OPEN);
  });

  it('sends what a handler returns: each value of an Observable, what a promise resolves to, nothing for null; an Observable error as an error frame', async () => {
    const client = await connect();
    const frames: Array<Record<string, unknown>> = [];
    client.socket.on('message', (data) => frames.push(JSON.parse(String(data))));
    client.send({ type: 'b_stream', id: 's1' });
    client.send({ type: 'b_nothing', id: 'z1' });
    client.send({ type: 'b_later', id: 'l1' });
    client.send({ type: 'b_broken', id: 'x1' });
    client.send({ type: 'ping', id: 'end' });
    await waitFor(() => frames.some((f) => f.type === 'pong') && frames.some((f) => f.type === 'b_done'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(frames.filter((f) => f.type !== 'pong')).toEqual([
      { type: 'b_piece', n: 1 },
      { type: 'b_piece', n: 2 },
      { type: 'b_piece', n: 0 },
      { type: 'error', code: 'conflict', message: 'stream broke', id: 'x1' },
      { type: 'b_done' },
    ]);
  });

  it('calls a @FrameGateway() handler directly, and leaves any other pipeline (guards, interceptors) to Nest', async () => {
    const [gatewayA, gatewayB, gatewayC] = [app.get(GatewayA), app.get(GatewayB), app.get(GatewayC)];
    expect(directHandler(gatewayA, 'echo')).toBeDefined();
    expect(directHandler(gatewayB, 'note')).toBeDefined();
    expect(directHandler(gatewayB, 'stream')).toBeUndefined(); // no parameter decorators: Nest passes raw arguments
    expect(directHandler(gatewayC, 'guarded')).toBeUndefined();
    expect(directHandler(gatewayC, 'intercepted')).toBeUndefined();

    const client = await connect();
    const before = ClosedGuard.calls;
    client.send({ type: 'c_guarded', id: 'g1' });
    expect(await client.next((f) => f.type === 'error')).toMatchObject({ code: 'invalid_message', message: 'Forbidden resource', id: 'g1' });
    expect(ClosedGuard.calls).toBe(before + 1);
    expect(gatewayC.seen).toEqual([]);
    client.send({ type: 'c_intercepted', id: 'i1', text: 'hey' });
    expect(await client.next((f) => f.type === 'c_reply')).toEqual({ type: 'c_reply', text: 'hey', intercepted: true });
    client.send({ type: 'c_intercepted', id: 'i2' }); // its validation pipe still runs first
    expect(await client.next((f) => f.type === 'error')).toMatchObject({ code: 'invalid_message', id: 'i2', field: 'text' });
  });

  it('calls the gateways’ connection and disconnect hooks and forgets the closed connection', async () => {
    const client = await connect();
    await waitFor(() => a.connected.length === 1);
    expect(a.connected).toEqual([client.connectionId]);
    expect(registry.size).toBe(1);
    client.socket.close();
    await waitFor(() => a.disconnected.length === 1);
    expect(a.disconnected).toEqual([client.connectionId]);
    expect(registry.size).toBe(0);
  });

  it('closes a frame over maxPayload with 1009', async () => {
    const client = await connect();
    client.send({ type: 'a_echo', text: 'x'.repeat(5000) });
    expect(await client.closed).toBe(1009);
  });

  it('drops a socket that stops answering pings and keeps one that answers', async () => {
    const alive = await connect();
    const dead = await connect({ autoPong: false });
    expect(await dead.closed).toBe(1006);
    expect(alive.socket.readyState).toBe(WebSocket.OPEN);
    expect(registry.get(alive.connectionId)).toBeDefined();
    await waitFor(() => registry.get(dead.connectionId) === undefined);
  });

  it('terminates the sockets of its server when the app closes', async () => {
    const client = await connect();
    await app.close();
    expect(await client.closed).toBe(1006);
    app = { close: async () => undefined } as unknown as INestApplication;
  });
});

describe('FrameWsAdapter with the upgrade check: per-user socket cap', () => {
  const LIMIT = 3;
  let app: INestApplication;
  let registry: ConnectionRegistry;
  let auth: AuthService;
  let url: string;
  const clients: WsTestClient[] = [];

  /** The user is `x-user`, the login session `x-session` (a stand-in for the session cookie). */
  const resolver: UserResolver = {
    resolve: async (req) => {
      const id = req.headers['x-user'] as string | undefined;
      return id ? { id, username: id, isAdmin: false, sessionKey: req.headers['x-session'] as string } : undefined;
    },
  };
  const as = (user: string, session: string) => ({ headers: { 'x-user': user, 'x-session': session } });
  const connect = async (user: string, session: string): Promise<WsTestClient> => {
    const client = await WsTestClient.connect(url, as(user, session));
    clients.push(client);
    return client;
  };

  beforeEach(async () => {
    app = await NestFactory.create(TestModule, { logger: false });
    registry = app.get(ConnectionRegistry);
    const env = Object.assign(new Environment(), { WS_MAX_SOCKETS_PER_USER: LIMIT });
    const users = { deleteSession: async () => undefined } as unknown as UsersRepository;
    auth = new AuthService(users, env, registry, new RateLimits(env, { enabled: false } as RedisService));
    const upgrade = new UpgradeAuth(auth, resolver, registry, env, new HostCheck(env));
    app.useWebSocketAdapter(new FrameWsAdapter(app, registry, { maxPayload: 4096, pingIntervalMs: 10_000, authenticate: upgrade.authenticate }));
    await app.listen(0, '127.0.0.1');
    url = `ws://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}${WS_PATH}`;
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.socket.terminate();
    await app.close();
  });

  it('refuses the socket over the limit with 429, counts each user apart, and admits again after a close', async () => {
    expect(await upgradeStatus(url, {})).toBe(401);
    const alice = [await connect('alice', 's1'), await connect('alice', 's1'), await connect('alice', 's2')];
    await connect('bob', 's3');
    expect([registry.countFor('alice'), registry.countFor('bob')]).toEqual([LIMIT, 1]);
    expect(await upgradeStatus(url, as('alice', 's1').headers)).toBe(429);
    expect(registry.countFor('alice')).toBe(LIMIT);
    expect(await upgradeStatus(url, as('bob', 's3').headers)).toBe(101);

    alice[0].socket.close();
    await alice[0].closed;
    await waitFor(() => registry.countFor('alice') === LIMIT - 1);
    expect(registry.countFor('alice')).toBe(LIMIT - 1);
    await connect('alice', 's1');
    expect(registry.countFor('alice')).toBe(LIMIT);
    expect(registry.countFor('bob')).toBe(1);
  });

  it('logout closes the sockets of that session with 4401 and the count drops by exactly those', async () => {
    const s1 = [await connect('alice', 's1'), await connect('alice', 's1')];
    const s2 = await connect('alice', 's2');
    expect(registry.countFor('alice')).toBe(3);
    await auth.logout({ id: 'alice', username: 'alice', isAdmin: false, sessionKey: 's1' });
    expect(await Promise.all(s1.map((c) => c.closed))).toEqual([4401, 4401]);
    await waitFor(() => registry.countFor('alice') === 1);
    expect(registry.countFor('alice')).toBe(1);
    expect(s2.socket.readyState).toBe(WebSocket.OPEN);
    expect(registry.userOf(s2.connectionId)).toEqual({ id: 'alice', sessionKey: 's2' });
  });
});

import {
  CallHandler,
  CanActivate,
  ExecutionContext,
  INestApplication,
  Injectable,
  Module,
  NestInterceptor,
  Provider,
  Type,
  UseGuards,
  UseInterceptors,
} from '@nestjs/common';
import { DiscoveryModule, NestFactory } from '@nestjs/core';
import { IoAdapter } from '@nestjs/platform-socket.io';
import { WsAdapter } from '@nestjs/platform-ws';
import { MessageBody, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import { IsString } from 'class-validator';
import { concat, map, Observable, of, throwError } from 'rxjs';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import type { Server } from 'node:http';
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
import { ConnectionRegistry } from './connection-registry';
import { ConnectionId, FrameBody, FrameGateway, FrameSocket, OnFrame } from './frame-gateway.decorator';
import { FrameRouter } from './frame-router';
import { FrameSocketServer } from './frame-socket.server';
import type { Frame } from './frames';
import { WS_PATH } from './ws-path';

class EchoDto {
  @IsString()
  text!: string;
}

class NoteDto {
  @IsString()
  note!: string;
}

/** Gateway A: a MessageHandler, two types with their own DTOs, a reply and a thrown error. */
@FrameGateway()
class GatewayA {
  readonly seen: Array<{ type: string; connectionId: string; dto: string }> = [];

  @OnFrame('a_echo', EchoDto)
  @OnFrame('a_note', NoteDto)
  @OnFrame('a_fail')
  handleMessage(msg: (EchoDto & { type: 'a_echo' }) | (NoteDto & { type: 'a_note' }) | { type: 'a_fail' }, connectionId: string): Frame | undefined {
    this.seen.push({ type: msg.type, connectionId, dto: msg.constructor.name });
    if (msg.type === 'a_fail') throw new AppError('not_found', 'nothing here');
    return msg.type === 'a_echo' ? { type: 'a_echoed', text: msg.text, connection_id: connectionId } : undefined;
  }

  broadcast(): void {}
}

/** Gateway B: handlers that name their parameters, and results of each kind. */
@FrameGateway()
class GatewayB {
  readonly seen: Array<{ type: string; connectionId: string; socket: boolean }> = [];

  @OnFrame('b_note')
  note(@FrameSocket() socket: WebSocket, @ConnectionId() connectionId: string): void {
    this.seen.push({ type: 'b_note', connectionId, socket: socket instanceof WebSocket });
  }

  /** What a handler returns, each kind: an Observable (nulls skipped), a promise, null, a failing Observable. */
  @OnFrame('b_stream')
  stream(): Observable<object | null> {
    return of({ type: 'b_piece', n: 1 }, null, { type: 'b_piece', n: 2 });
  }

  @OnFrame('b_later')
  async later(): Promise<object> {
    await new Promise((resolve) => setImmediate(resolve));
    return { type: 'b_done' };
  }

  @OnFrame('b_nothing')
  nothing(): null {
    return null;
  }

  @OnFrame('b_broken')
  broken(): Observable<object> {
    return concat(
      of({ type: 'b_piece', n: 0 }),
      throwError(() => new AppError('conflict', 'stream broke')),
    );
  }
}

/** A guard that lets nothing through, recording what the 'ws' context showed it. */
@Injectable()
class ClosedGuard implements CanActivate {
  static seen: Array<{ type: string; client: boolean; data: unknown; pattern: unknown; handler: string }> = [];
  canActivate(context: ExecutionContext): boolean {
    const ws = context.switchToWs();
    ClosedGuard.seen.push({
      type: context.getType(),
      client: ws.getClient() instanceof WebSocket,
      data: ws.getData(),
      pattern: ws.getPattern(),
      handler: context.getHandler().name,
    });
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

/** Gateway C: handlers with enhancers a host app might add; Nest runs them. */
@FrameGateway()
class GatewayC {
  readonly seen: string[] = [];

  @OnFrame('c_guarded')
  @UseGuards(ClosedGuard)
  guarded(): object {
    this.seen.push('c_guarded');
    return { type: 'c_reply' };
  }

  @OnFrame('c_intercepted', EchoDto)
  @UseInterceptors(MarkInterceptor)
  intercepted(@FrameBody() dto: EchoDto): object {
    return { type: 'c_reply', text: dto.text };
  }
}

/** A host's own Socket.IO gateway on the same HTTP server (IoAdapter, default path /socket.io/). */
@WebSocketGateway()
class SocketIoGateway {
  @SubscribeMessage('events')
  onEvent(@MessageBody() data: unknown): object {
    return { event: 'events', data };
  }
}

/** A host's own gateway on the same HTTP server, with the stock WsAdapter: `{event, data}` frames. */
@WebSocketGateway({ path: '/host-events' })
class HostGateway {
  @SubscribeMessage('events')
  onEvent(@MessageBody() data: unknown): object {
    return { event: 'events', data };
  }
}

const environment = (settings: Partial<Environment> = {}): Provider => ({
  provide: Environment,
  useValue: Object.assign(new Environment(), { WS_MAX_PAYLOAD: 4096, WS_PING_INTERVAL_MS: 100 }, settings),
});

function testModule(providers: Provider[]): Type {
  @Module({ imports: [DiscoveryModule], providers: [ConnectionRegistry, FrameRouter, FrameSocketServer, ...providers] })
  class TestModule {}
  return TestModule;
}

const waitFor = async (check: () => boolean, timeoutMs = 3000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

describe('FrameSocketServer', () => {
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
    app = await NestFactory.create(testModule([environment(), GatewayA, GatewayB, GatewayC]), { logger: false });
    registry = app.get(ConnectionRegistry);
    await app.listen(0, '127.0.0.1');
    url = `ws://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}${WS_PATH}`;
    a = app.get(GatewayA);
    b = app.get(GatewayB);
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.socket.terminate();
    await app.close();
  });

  it('gives each socket one listener per event, the same shared functions for every socket', async () => {
    const client = await connect();
    const socket = serverSocket(client);
    const other = serverSocket(await connect());
    for (const event of ['message', 'close', 'pong', 'error']) {
      expect(socket.listenerCount(event)).toBe(1);
      expect(other.listeners(event)).toEqual(socket.listeners(event));
    }
  });

  it("routes each type to its handler, through handleMessage with the type's DTO and the connection id", async () => {
    const one = await connect();
    const two = await connect();
    two.send({ type: 'b_note', id: 'n1' });
    one.send({ type: 'a_echo', id: 'e1', text: 'hi' });
    expect(await one.next((f) => f.type === 'a_echoed')).toEqual({ type: 'a_echoed', text: 'hi', connection_id: one.connectionId });
    one.send({ type: 'a_note', id: 'e2', note: 'n' });
    await waitFor(() => b.seen.length === 1 && a.seen.length === 2);
    expect(a.seen).toEqual([
      { type: 'a_echo', connectionId: one.connectionId, dto: 'EchoDto' },
      { type: 'a_note', connectionId: one.connectionId, dto: 'NoteDto' },
    ]);
    expect(b.seen).toEqual([{ type: 'b_note', connectionId: two.connectionId, socket: true }]);
  });

  it('answers an unknown type, a frame failing its DTO and a thrown error with error frames; the socket stays open', async () => {
    const client = await connect();
    client.send({ type: 'c_nothing', id: 'u1' });
    expect(await client.next((f) => f.type === 'error')).toMatchObject({ code: 'unknown_type', id: 'u1' });
    client.send({ type: 'a_echo', id: 'v1' });
    expect(await client.next((f) => f.type === 'error')).toMatchObject({ code: 'invalid_message', id: 'v1', field: 'text' });
    client.send({ type: 'a_note', id: 'v2', text: 'not a note' });
    expect(await client.next((f) => f.type === 'error')).toMatchObject({ code: 'invalid_message', id: 'v2', field: 'note' });
    client.send({ type: 'a_fail', id: 'f1' });
    expect(await client.next((f) => f.type === 'error')).toMatchObject({ code: 'not_found', id: 'f1' });
    client.send('{not json');
    expect(await client.next((f) => f.type === 'error')).toMatchObject({ code: 'invalid_json' });
    client.send({ type: 'ping', id: 'p1' });
    expect(await client.next((f) => f.type === 'pong')).toEqual({ type: 'pong', id: 'p1' });
    expect(client.socket.readyState).toBe(WebSocket.OPEN);
    // One error frame per bad frame: the filter's frame is the call's result, nothing is sent twice.
    expect(client.frames.filter((f) => f.type === 'error')).toHaveLength(5);
  });

  it("sends what a handler returns: an Observable's last frame, what a promise resolves to, nothing for null; an Observable error as an error frame", async () => {
    const client = await connect();
    const frames: Array<Record<string, unknown>> = [];
    client.socket.on('message', (data) => frames.push(JSON.parse(String(data))));
    client.send({ type: 'b_stream', id: 's1' });
    client.send({ type: 'b_nothing', id: 'z1' });
    client.send({ type: 'b_later', id: 'l1' });
    client.send({ type: 'b_broken', id: 'x1' });
    client.send({ type: 'ping', id: 'end' });
    await waitFor(() => frames.some((f) => f.type === 'pong') && frames.some((f) => f.type === 'b_done') && frames.some((f) => f.type === 'error'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Nest's pipeline resolves an Observable to its last value (ExternalContextCreator), as for HTTP.
    expect(frames.filter((f) => f.type !== 'pong')).toEqual(
      expect.arrayContaining([{ type: 'b_piece', n: 2 }, { type: 'b_done' }, { type: 'error', code: 'conflict', message: 'stream broke', id: 'x1' }]),
    );
    expect(frames.filter((f) => f.type !== 'pong')).toHaveLength(3);
  });

  it("runs Nest's guards (with the 'ws' context: socket, frame, type, handler) and interceptors around a handler", async () => {
    const gatewayC = app.get(GatewayC);
    const client = await connect();
    ClosedGuard.seen = [];
    client.send({ type: 'c_guarded', id: 'g1' });
    expect(await client.next((f) => f.type === 'error')).toMatchObject({ code: 'forbidden', message: 'Forbidden resource', id: 'g1' });
    expect(ClosedGuard.seen).toEqual([{ type: 'ws', client: true, data: { type: 'c_guarded', id: 'g1' }, pattern: 'c_guarded', handler: 'guarded' }]);
    expect(gatewayC.seen).toEqual([]);
    client.send({ type: 'c_intercepted', id: 'i1', text: 'hey' });
    expect(await client.next((f) => f.type === 'c_reply')).toEqual({ type: 'c_reply', text: 'hey', intercepted: true });
    client.send({ type: 'c_intercepted', id: 'i2' }); // its validation pipe still runs
    expect(await client.next((f) => f.type === 'error')).toMatchObject({ code: 'invalid_message', id: 'i2', field: 'text' });
  });

  it("answers our pages' chat-system subprotocol, never a bearer token offered beside it", async () => {
    const client = await WsTestClient.connect(url, undefined, ['bearer.secret-token', 'chat-system']);
    clients.push(client);
    expect(client.socket.protocol).toBe('chat-system');
    const other = await WsTestClient.connect(url, undefined, ['bearer.secret-token', 'v1.custom']);
    clients.push(other);
    expect(other.socket.protocol).toBe('v1.custom');
  });

  it('forgets a closed connection', async () => {
    const client = await connect();
    expect(registry.size).toBe(1);
    client.socket.close();
    await waitFor(() => registry.size === 0);
  });

  it('closes a frame over WS_MAX_PAYLOAD with 1009', async () => {
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

  it('drops an upgrade on another path (nobody else serves it), as Node does', async () => {
    expect(await upgradeStatus(url.replace(WS_PATH, '/elsewhere'), {})).toBe(0);
  });

  it('terminates its sockets when the app closes', async () => {
    const client = await connect();
    await app.close();
    expect(await client.closed).toBe(1006);
    app = { close: async () => undefined } as unknown as INestApplication;
  });
});

describe("FrameSocketServer beside a host's own gateways on the same HTTP server", () => {
  it("with WsAdapter: both serve their own path; the host's gateway gets no connected frame, ours no {event} frame", async () => {
    const app = await NestFactory.create(testModule([environment(), GatewayA, HostGateway]), { logger: false });
    app.useWebSocketAdapter(new WsAdapter(app));
    await app.listen(0, '127.0.0.1');
    const base = `ws://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    try {
      const ours = await WsTestClient.connect(`${base}${WS_PATH}`);
      ours.send({ type: 'a_echo', id: 'e', text: 'x' });
      expect(await ours.next((f) => f.type === 'a_echoed')).toMatchObject({ text: 'x' });

      const host = new WebSocket(`${base}/host-events`);
      const first = new Promise<unknown>((resolve) => host.once('message', (data) => resolve(JSON.parse(String(data)))));
      await new Promise((resolve) => host.once('open', resolve));
      host.send(JSON.stringify({ event: 'events', data: 42 }));
      expect(await first).toEqual({ event: 'events', data: 42 });
      host.terminate();
      ours.socket.terminate();
      // The stock adapter still drops what nobody serves.
      expect(await upgradeStatus(`${base}/nowhere`, {})).toBe(0);
    } finally {
      await app.close();
    }
  });

  it("with Socket.IO's IoAdapter: its gateway answers on /socket.io/, ours keeps its socket past engine.io's 1 s cleanup of foreign upgrades", async () => {
    const app = await NestFactory.create(testModule([environment(), GatewayA, SocketIoGateway]), { logger: false });
    app.useWebSocketAdapter(new IoAdapter(app));
    await app.listen(0, '127.0.0.1');
    const base = `ws://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    try {
      const ours = await WsTestClient.connect(`${base}${WS_PATH}`);
      // engine.io's protocol by hand (EIO 4 over a plain WebSocket): open, connect to "/", one event.
      const io = new WebSocket(`${base}/socket.io/?EIO=4&transport=websocket`);
      const packets: string[] = [];
      const packet = (match: (text: string) => boolean) =>
        new Promise<string>((resolve) => {
          const check = () => {
            const found = packets.find(match);
            if (found) resolve(found);
            else io.once('message', check);
          };
          check();
        });
      io.on('message', (data) => packets.push(String(data)));
      expect(await packet((p) => p.startsWith('0{'))).toMatch(/"sid"/);
      io.send('40');
      await packet((p) => p.startsWith('40'));
      io.send('42["events",{"n":7}]');
      expect(await packet((p) => p.startsWith('42'))).toBe('42["events",{"n":7}]');
      io.terminate();

      await new Promise((resolve) => setTimeout(resolve, 1200));
      expect(ours.socket.readyState).toBe(WebSocket.OPEN);
      ours.send({ type: 'a_echo', id: 'late', text: 'still here' });
      expect(await ours.next((f) => f.type === 'a_echoed')).toMatchObject({ text: 'still here' });
      expect(ours.frames.filter((f) => f.type === 'connected')).toHaveLength(1);
      ours.socket.terminate();
    } finally {
      await app.close();
    }
  });
});

describe('FrameSocketServer beside upgrade listeners added after it started (a raw ws server after app.listen())', () => {
  let app: INestApplication;
  let base: string;
  let theirs: WebSocketServer | undefined;
  /** The paths their server took a socket on. */
  let theirPaths: string[] = [];
  const clients: WsTestClient[] = [];

  beforeEach(async () => {
    app = await NestFactory.create(testModule([environment(), GatewayA]), { logger: false });
    await app.listen(0, '127.0.0.1');
    base = `ws://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.socket.terminate();
    if (theirs) {
      for (const client of theirs.clients) client.terminate();
      await new Promise((resolve) => theirs!.close(resolve));
      theirs = undefined;
    }
    await app.close();
  });

  /** A host's plain ws server on the app's HTTP server, added now: it echoes what it gets, tagged. */
  const attachTheirs = (options: WebSocket.ServerOptions = {}): WebSocketServer => {
    theirs = new WebSocketServer({ server: app.getHttpServer() as Server, ...options });
    theirPaths = [];
    theirs.on('connection', (socket, request) => theirPaths.push(request.url ?? ''));
    theirs.on('connection', (socket, request) => socket.on('message', (data) => socket.send(`theirs ${request.url}: ${String(data)}`)));
    return theirs;
  };
  /** Opens a socket on their server and returns its first answer to `text`. */
  const echo = async (path: string, text: string): Promise<string> => {
    const socket = new WebSocket(`${base}${path}`);
    try {
      await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
      const answer = new Promise<string>((resolve) => socket.once('message', (data) => resolve(String(data))));
      socket.send(text);
      return await answer;
    } finally {
      socket.terminate();
    }
  };
  /** Ours connects (one `connected` frame) and answers (a reply frame), never a frame of theirs. */
  const oursWorks = async (): Promise<void> => {
    const ours = await WsTestClient.connect(`${base}${WS_PATH}`);
    clients.push(ours);
    ours.send({ type: 'a_echo', id: 'e', text: 'x' });
    expect(await ours.next((f) => f.type === 'a_echoed')).toMatchObject({ text: 'x' });
    expect(ours.frames.filter((f) => f.type === 'connected')).toHaveLength(1);
    expect(ours.frames.some((f) => typeof f === 'string')).toBe(false);
  };

  it('without a path (it serves every upgrade): it serves every other path, never ours', async () => {
    attachTheirs();
    await oursWorks();
    expect(await echo('/anything', 'hi')).toBe('theirs /anything: hi');
    await oursWorks();
    expect(theirPaths).toEqual(['/anything']); // ours never became one of theirs
  });

  it('with its own path (it destroys what it does not serve): it serves its path, ours keeps working', async () => {
    attachTheirs({ path: '/theirs' });
    expect(await echo('/theirs', 'hello')).toBe('theirs /theirs: hello');
    await oursWorks();
    expect(theirPaths).toEqual(['/theirs']);
    expect(await upgradeStatus(`${base}/nowhere`, {})).toBe(400); // theirs refuses what it does not serve, as always
  });

  it('stays transparent: listeners() shows theirs, removing it (their close) removes it, a prepended listener never sees our path', async () => {
    const server = app.getHttpServer() as Server;
    const seen: string[] = [];
    const spy = (request: { url?: string }): void => void seen.push(request.url ?? '');
    server.prependListener('upgrade', spy);
    const wss = attachTheirs({ path: '/theirs' });
    await Promise.resolve();
    expect(server.listeners('upgrade')).toEqual(expect.arrayContaining([spy]));
    expect(server.listenerCount('upgrade')).toBe(3);
    await oursWorks();
    expect(await echo('/theirs', 'x')).toBe('theirs /theirs: x');
    expect(seen).toEqual(['/theirs']);

    await new Promise((resolve) => wss.close(resolve));
    theirs = undefined;
    server.removeListener('upgrade', spy);
    expect(server.listenerCount('upgrade')).toBe(1);
    // Ours alone again: an upgrade nobody serves is dropped, as Node does.
    expect(await upgradeStatus(`${base}/theirs`, {})).toBe(0);
    await oursWorks();
  });
});

describe('FrameSocketServer start-up checks', () => {
  const startError = async (providers: Provider[]): Promise<string> => {
    const app = await NestFactory.create(testModule([environment(), ...providers]), { logger: false, abortOnError: false });
    app.useWebSocketAdapter(new WsAdapter(app));
    try {
      await app.init();
    } catch (error) {
      return (error as Error).message;
    } finally {
      await app.close().catch(() => undefined);
    }
    throw new Error('expected the app to fail at start-up');
  };

  it('a frame type with two handlers', async () => {
    @FrameGateway()
    class Twice {
      @OnFrame('a_echo')
      again(): void {}
    }
    expect(await startError([GatewayA, Twice])).toMatch(/^frame type "a_echo" has two handlers, GatewayA\.handleMessage and Twice\.again/);
  });

  it('a type the socket answers itself', async () => {
    @FrameGateway()
    class Pinger {
      @OnFrame('ping')
      ping(): void {}
    }
    expect(await startError([Pinger])).toMatch(/@OnFrame\('ping'\) on Pinger\.ping: "ping" is a frame type of the socket itself/);
  });

  it("a host gateway on our path of the app's HTTP server", async () => {
    @WebSocketGateway({ path: WS_PATH })
    class Squatter {}
    expect(await startError([Squatter])).toMatch(
      /^Squatter is a WebSocket gateway on \/ws, the chat's socket path, on the app's HTTP server: give it another path or port/,
    );
  });

  it('no HTTP server to serve the path', async () => {
    const context = await NestFactory.createApplicationContext(testModule([environment(), GatewayA]), { logger: false, abortOnError: false }).then(
      async (ctx) => {
        try {
          await ctx.init();
          return 'started';
        } catch (error) {
          return (error as Error).message;
        }
      },
      (error: Error) => error.message,
    );
    expect(context).toMatch(/^the chat's socket \(\/ws\) is served by the app's HTTP server, and this app has none/);
  });
});

describe('FrameSocketServer with the upgrade check: per-user socket cap', () => {
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
    const env = Object.assign(new Environment(), { WS_MAX_SOCKETS_PER_USER: LIMIT, WS_MAX_PAYLOAD: 4096, WS_PING_INTERVAL_MS: 10_000 });
    const users = { deleteSession: async () => undefined } as unknown as UsersRepository;
    const upgradeAuth: Provider = {
      provide: UpgradeAuth,
      inject: [ConnectionRegistry],
      useFactory: (registry: ConnectionRegistry) => {
        auth = new AuthService(users, env, registry, new RateLimits(env, { enabled: false } as RedisService));
        return new UpgradeAuth(auth, resolver, registry, env, new HostCheck(env));
      },
    };
    app = await NestFactory.create(testModule([{ provide: Environment, useValue: env }, upgradeAuth, GatewayA]), { logger: false });
    registry = app.get(ConnectionRegistry);
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

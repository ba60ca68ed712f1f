import { type INestApplicationContext, Logger } from '@nestjs/common';
import type { MessageMappingProperties } from '@nestjs/websockets';
import { WsAdapter } from '@nestjs/platform-ws';
import { WebSocketsController } from '@nestjs/websockets/web-sockets-controller';
import type { IncomingMessage } from 'node:http';
import { isObservable } from 'rxjs';
import type { RawData, WebSocket, WebSocketServer } from 'ws';
import { AppError, type ErrorCode } from '../common/app-error';
import { type ConnectionRegistry, type ConnectionUser, connectionOf } from './connection-registry';
import { directHandler, type Invoke } from './direct-handler';
import { toErrorFrame } from './error-frames';
import type { Frame } from './frames';
import { PROTOCOL_VERSION, WS_PATH } from './ws-path';

export type UpgradeVerdict = { ok: true; user: ConnectionUser } | { ok: false; status: number; message: string };

export interface FrameAdapterOptions {
  maxPayload: number;
  pingIntervalMs: number;
  /** Decides each upgrade (origin, session); without it every socket belongs to one local user. */
  authenticate?: (request: IncomingMessage) => Promise<UpgradeVerdict>;
  /**
   * Where the socket of every gateway declared on `WS_PATH` is served (default `WS_PATH`). Gateways
   * keep naming `WS_PATH`; the mapping happens here, so they all follow it together.
   */
  path?: string;
}

const UPGRADE_USER = Symbol('upgradeUser');
/** Every socket's user where no upgrade check is configured. */
const NO_CHECK_USER: ConnectionUser = Object.freeze({ id: 'local' });
type CheckedRequest = IncomingMessage & { [UPGRADE_USER]?: ConnectionUser };

/** What Nest prepared for one gateway: its handlers (not bound to any socket) and its hook streams. */
interface GatewayBinding {
  instance: object;
  handlers: MessageMappingProperties[];
  connection: { next(args: unknown[]): void };
  disconnect: { next(client: unknown): void };
}

/** One per server, shared by all its sockets: the dispatch table and the listeners every socket gets. */
interface ServerState {
  /** Message type → gateway handler, resolved once when the gateways were connected. */
  readonly table: Map<string, Invoke>;
  readonly gateways: GatewayBinding[];
  readonly onMessage: (this: WebSocket, data: RawData, isBinary: boolean) => void;
  readonly onClose: (this: WebSocket) => void;
}

const GATEWAY = Symbol('frameGateway');
type ConnectionHandler = ((...args: unknown[]) => void) & { [GATEWAY]?: GatewayBinding };

/** Handlers bound per socket: only when Nest could not hand over its gateways (see `exposeGateways`). */
const HANDLERS = Symbol('frameHandlers');
type Tracked = WebSocket & { [HANDLERS]?: Map<string, Invoke> };

const log = new Logger('FrameWsAdapter');

/** Listeners shared by every socket (`this` is the socket): nothing is allocated for them per socket. */
function onSocketError(error: Error & { code?: string }): void {
  log.debug(`socket closed on error ${error.code ?? error.message}`);
}
function onPong(this: WebSocket): void {
  const connection = connectionOf(this);
  if (connection) connection.alive = true;
}

/**
 * Nest binds every gateway's handlers and a `close` listener to each socket (per gateway: an array of
 * handler objects, a bound function per handler, a closure for the result and one for the close).
 * The connection handler Nest gives the adapter hides what it binds; this makes it also carry them
 * (the gateway, its unbound handlers and its hook streams) so the adapter can resolve them once per
 * server. Where it cannot be applied (another Nest), `bindClientConnect` falls back to Nest's binding.
 */
function exposeGateways(): void {
  const proto = WebSocketsController?.prototype as unknown as {
    getConnectionHandler?: (...args: unknown[]) => ConnectionHandler;
    [GATEWAY]?: true;
  };
  const original = proto?.getConnectionHandler;
  if (typeof original !== 'function' || proto[GATEWAY]) return;
  proto[GATEWAY] = true;
  proto.getConnectionHandler = function (this: unknown, ...args: unknown[]): ConnectionHandler {
    const handler = original.apply(this, args);
    const [, instance, handlers, disconnect, connection] = args as [
      unknown,
      object,
      MessageMappingProperties[],
      GatewayBinding['disconnect'],
      GatewayBinding['connection'],
    ];
    if (typeof handler === 'function' && Array.isArray(handlers) && typeof disconnect?.next === 'function' && typeof connection?.next === 'function') {
      handler[GATEWAY] = { instance, handlers, disconnect, connection };
    }
    return handler;
  };
}

/** Sends a frame if the socket is still open. */
function send(client: WebSocket, frame: Frame): void {
  if (client.readyState === 1) client.send(JSON.stringify(frame));
}

/**
 * What Nest's gateway pipeline does with a handler's result (`WebSocketsController.pickResult`: the
 * awaited result, an Observable's values as they come, or the value itself), without building an
 * Observable per frame: one `then` on the result. A value that is null or undefined sends nothing; an
 * error (rejection or Observable error) becomes an `error` frame carrying the request's `id`.
 */
function deliver(client: WebSocket, result: unknown, id: string | undefined): void {
  Promise.resolve(result).then(
    (value: unknown) => {
      if (isObservable(value)) {
        value.subscribe({
          next: (response) => {
            if (response !== undefined && response !== null) send(client, response as Frame);
          },
          error: (error) => send(client, toErrorFrame(error, id)),
        });
      } else if (value !== undefined && value !== null) {
        send(client, value as Frame);
      }
    },
    (error: unknown) => send(client, toErrorFrame(error, id)),
  );
}

/**
 * The `ws` adapter of the protocol. Unlike the stock one, which drops bad frames silently and gives
 * each gateway its own listener per socket, it resolves one dispatch table per server shared by every
 * gateway on the path and every socket, routes frames by `type`, and answers every bad frame with an
 * `error` frame. It also gives each connection its id and `connected` frame, enforces the size limit
 * (close 1009) and pings. Per socket it keeps the registry's connection and four listeners, all of them
 * shared functions.
 */
export class FrameWsAdapter extends WsAdapter {
  private readonly servers = new Map<WebSocketServer, ServerState>();
  private heartbeatTimer?: NodeJS.Timeout;

  constructor(
    app: INestApplicationContext,
    private readonly registry: ConnectionRegistry,
    private readonly options: FrameAdapterOptions,
  ) {
    super(app, { messageParser: (data) => JSON.parse(String(data)) });
    exposeGateways();
  }

  create(port: number, options: Record<string, unknown> = {}): WebSocketServer {
    const path = options.path === WS_PATH && this.options.path ? this.options.path : (options.path as string | undefined);
    const server: WebSocketServer = super.create(port, {
      ...options,
      path,
      maxPayload: this.options.maxPayload,
      // The registry knows every socket; ws's own set would cost a closure and a listener per socket.
      clientTracking: false,
      verifyClient: (info: { req: CheckedRequest }, done: (ok: boolean, status?: number, message?: string) => void) => this.verify(info.req, done),
    });
    // ws calls these with the socket as `this`; the adapter is reached through arrow-bound helpers.
    const dispatch = (socket: WebSocket, data: RawData, isBinary: boolean) => this.dispatch(socket, state, data, isBinary);
    const forget = (id: string) => this.registry.remove(id);
    const state: ServerState = {
      table: new Map(),
      gateways: [],
      onMessage(this: WebSocket, data: RawData, isBinary: boolean) {
        dispatch(this, data, isBinary);
      },
      onClose(this: WebSocket) {
        const connection = connectionOf(this);
        if (connection) forget(connection.id);
        for (const gateway of state.gateways) gateway.disconnect.next(this);
      },
    };
    this.servers.set(server, state);
    server.on('connection', (socket: WebSocket, request: CheckedRequest) => this.onConnection(state, socket, request));
    server.on('close', () => {
      this.servers.delete(server);
      if (this.servers.size === 0) this.stopHeartbeat();
    });
    this.startHeartbeat();
    return server;
  }

  /** Socket errors are the client's (oversized frame, bad opcode): ws closes the socket itself. */
  bindErrorHandler(server: WebSocketServer): WebSocketServer {
    server.on('error', (error: Error) => log.error(`WebSocket server error: ${error.message}`));
    return server;
  }

  /** A gateway of one of our servers joins its dispatch table; its hooks are called from our listeners. */
  bindClientConnect(server: WebSocketServer, callback: ConnectionHandler): void {
    const state = this.servers.get(server);
    const gateway = callback[GATEWAY];
    if (!state || !gateway) return super.bindClientConnect(server, callback);
    state.gateways.push(gateway);
    for (const { message, methodName, callback: handle } of gateway.handlers) {
      const { instance } = gateway;
      // Nest's pipeline per frame, unless the handler's is exactly what directHandler does itself.
      const invoke: Invoke =
        directHandler(instance, methodName) ?? ((client, frame, type) => (handle as (...args: unknown[]) => unknown).call(instance, client, frame, type));
      state.table.set(message as string, invoke);
    }
  }

  /** Only reached without `exposeGateways` (Nest bound the handlers to this socket itself). */
  bindMessageHandlers(client: Tracked, handlers: MessageMappingProperties[]): void {
    const table = (client[HANDLERS] ??= new Map<string, Invoke>());
    for (const { message, callback } of handlers) {
      table.set(message as string, (_client, frame, type) => (callback as (...args: unknown[]) => unknown)(frame, type));
    }
  }

  /** Without ws's client set, the sockets of a server are the ones carrying its listener. */
  async close(server: WebSocketServer): Promise<void> {
    const closed = new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    const state = this.servers.get(server);
    // Frames sent in this tick (an answer's end at shutdown) are still corked: terminate drops them.
    this.registry.flushWrites();
    for (const connection of [...this.registry.all()]) {
      if (!state || connection.socket.listeners('close').includes(state.onClose)) connection.socket.terminate();
    }
    await closed;
  }

  private verify(request: CheckedRequest, done: (ok: boolean, status?: number, message?: string) => void): void {
    if (!this.options.authenticate) {
      request[UPGRADE_USER] = NO_CHECK_USER;
      return done(true);
    }
    this.options.authenticate(request).then(
      (verdict) => {
        if (!verdict.ok) return done(false, verdict.status, verdict.message);
        request[UPGRADE_USER] = verdict.user;
        done(true);
      },
      (error: unknown) => {
        log.error(`upgrade check failed: ${String(error)}`);
        done(false, 500, 'Internal Server Error');
      },
    );
  }

  private onConnection(state: ServerState, socket: WebSocket, request: CheckedRequest): void {
    const connection = this.registry.add(socket, request[UPGRADE_USER]);
    socket.on('error', onSocketError);
    socket.on('pong', onPong);
    socket.on('close', state.onClose);
    socket.on('message', state.onMessage);
    socket.send(JSON.stringify({ type: 'connected', connection_id: connection.id, protocol: PROTOCOL_VERSION }));
    for (const gateway of state.gateways) gateway.connection.next([socket, request]);
  }

  /** One timer for every socket of the adapter: a socket that did not answer the last ping is dropped. */
  private startHeartbeat(): void {
    if (this.heartbeatTimer) return;
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.options.pingIntervalMs);
    this.heartbeatTimer.unref();
  }

  private stopHeartbeat(): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  private heartbeat(): void {
    for (const connection of this.registry.all()) {
      if (!connection.alive) {
        connection.socket.terminate();
        continue;
      }
      connection.alive = false;
      connection.socket.ping();
    }
  }

  private dispatch(client: Tracked, state: ServerState, data: RawData, isBinary: boolean): void {
    let frame: unknown;
    try {
      if (isBinary) throw new Error('binary');
      frame = JSON.parse(String(data));
    } catch {
      return send(client, toErrorFrame(invalid('invalid_json', 'the frame is not JSON text')));
    }
    if (frame === null || typeof frame !== 'object' || Array.isArray(frame)) {
      return send(client, toErrorFrame(invalid('invalid_message', 'type: a frame is a JSON object with a string type', 'type')));
    }
    const { id, type } = frame as Frame;
    if (id !== undefined && typeof id !== 'string') {
      return send(client, toErrorFrame(invalid('invalid_message', 'id: must be a string', 'id')));
    }
    if (typeof type !== 'string' || type === '') {
      return send(client, toErrorFrame(invalid('invalid_message', 'type: must be a non-empty string', 'type'), id));
    }
    if (type === 'ping') return send(client, id === undefined ? { type: 'pong' } : { type: 'pong', id });
    const invoke = state.table.get(type) ?? client[HANDLERS]?.get(type);
    if (!invoke) return send(client, toErrorFrame(invalid('unknown_type', `no handler for type "${type.slice(0, 64)}"`), id));

    let result: unknown;
    try {
      result = invoke(client, frame, type);
    } catch (error) {
      return send(client, toErrorFrame(error, id));
    }
    deliver(client, result, id);
  }
}

function invalid(code: ErrorCode, message: string, field?: string): AppError {
  return new AppError(code, message, field ? { field } : {});
}

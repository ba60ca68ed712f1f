import { type BeforeApplicationShutdown, Injectable, Logger, type OnApplicationBootstrap, Optional } from '@nestjs/common';
import { DiscoveryService, HttpAdapterHost } from '@nestjs/core';
import { type IncomingMessage, type Server, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { type RawData, type WebSocket, WebSocketServer } from 'ws';
import { isTokenProtocol, PAGE_SUBPROTOCOL } from '../auth/bearer-token';
import { UpgradeAuth } from '../auth/upgrade-auth';
import { AppError, type ErrorCode } from '../common/app-error';
import { MountPoint } from '../common/mount';
import { Environment } from '../config/environment';
import { ConnectionRegistry, type ConnectionUser, connectionOf } from './connection-registry';
import { toErrorFrame } from './error-frames';
import { type FrameHandler, FrameRouter } from './frame-router';
import type { Frame } from './frames';
import { hostGatewaysOn } from './host-gateways';
import { PROTOCOL_VERSION, WS_PATH } from './ws-path';

/** Every socket's user where no upgrade check is configured. */
const NO_CHECK_USER: ConnectionUser = Object.freeze({ id: 'local' });

const log = new Logger('FrameSocketServer');

/** Listeners shared by every socket (`this` is the socket): nothing is allocated for them per socket. */
function onSocketError(error: Error & { code?: string }): void {
  log.debug(`socket closed on error ${error.code ?? error.message}`);
}
function onPong(this: WebSocket): void {
  const connection = connectionOf(this);
  if (connection) connection.alive = true;
}

/** Sends a frame if the socket is still open. */
function send(client: WebSocket, frame: Frame): void {
  if (client.readyState === 1) client.send(JSON.stringify(frame));
}

/** A handler's (or a filter's) result is sent when it is a frame: an object with a string `type`. */
function isFrame(value: unknown): value is Frame {
  return typeof value === 'object' && value !== null && typeof (value as Frame).type === 'string';
}

function invalid(code: ErrorCode, message: string, field?: string): AppError {
  return new AppError(code, message, field ? { field } : {});
}

/** The request path without its query string. */
function pathnameOf(request: IncomingMessage): string {
  const url = request.url ?? '/';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/** Refuses an upgrade with an HTTP status, as ws's own upgrade check does (`abortHandshake`). */
function refuse(socket: Duplex, status: number, message: string): void {
  if (!socket.writable) return void socket.destroy();
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: text/html\r\nContent-Length: ${Buffer.byteLength(message)}\r\n\r\n${message}`,
  );
}

/**
 * The subprotocol the socket answers with: our pages' `chat-system` when offered, else the first
 * offered that is not a token (`bearer.<token>`, see auth/bearer-token.ts: never echoed in a header).
 */
function selectProtocol(offered: Set<string>): string | false {
  if (offered.has(PAGE_SUBPROTOCOL)) return PAGE_SUBPROTOCOL;
  for (const protocol of offered) if (!isTokenProtocol(protocol)) return protocol;
  return false;
}

/** An `upgrade` listener; `listener` is the original a wrapper stands for (Node's own convention, as for `once`). */
type UpgradeListener = ((request: IncomingMessage, socket: Duplex, head: Buffer) => void) & { listener?: UpgradeListener };

/**
 * The chat's socket: a `ws` server of its own (`noServer`) on the app's HTTP server, answering the
 * upgrades on our path (MountPoint.wsPath) alone. It is not a Nest WebSocket adapter, so a host's own
 * gateways (another path, another port, `WsAdapter` or Socket.IO's `IoAdapter`, set before or after
 * mounting us) keep the adapter they chose.
 *
 * Per upgrade on our path: the upgrade check (Host, Origin, user, socket cap: UpgradeAuth), then the
 * connection gets its registry entry and a `connected` frame. Per frame: JSON object with a string
 * `type` (else an `error` frame), `ping` → `pong`, else the type's handler from FrameRouter, its
 * result sent when it is a frame. Per socket it keeps the registry's connection and four listeners,
 * all shared functions. One ping timer for all sockets; a socket that missed the last ping is dropped.
 *
 * Lifecycle: attached at bootstrap (Nest has connected every gateway by then, so the start-up checks
 * see the host's); closed in `beforeApplicationShutdown`. TransportModule is global, so every module
 * imports it and Nest runs its shutdown hooks after those of the modules that use it: the drains of
 * running answers and Solver runs (GenerationService, SolverService) finish on open sockets, then
 * this flushes the corked frames, terminates the sockets and closes; the HTTP server closes after.
 */
@Injectable()
export class FrameSocketServer implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly path: string;
  private wss?: WebSocketServer;
  private httpServer?: Server;
  private table = new Map<string, FrameHandler>();
  private heartbeatTimer?: NodeJS.Timeout;
  private closed = false;
  /** The wrappers of other servers' `upgrade` listeners (see attach). */
  private readonly wrappers = new WeakSet<UpgradeListener>();
  private rebuilding = false;
  /** The listeners every socket shares (ws calls them with the socket as `this`). */
  private readonly onMessage: (this: WebSocket, data: RawData, isBinary: boolean) => void;
  private readonly onClose: (this: WebSocket) => void;

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly registry: ConnectionRegistry,
    private readonly env: Environment,
    private readonly router: FrameRouter,
    private readonly discovery: DiscoveryService,
    @Optional() mount?: MountPoint,
    @Optional() private readonly upgradeAuth?: UpgradeAuth,
  ) {
    this.path = mount?.wsPath ?? WS_PATH;
    const dispatch = (socket: WebSocket, data: RawData, isBinary: boolean): void => this.dispatch(socket, data, isBinary);
    this.onMessage = function (this: WebSocket, data: RawData, isBinary: boolean) {
      dispatch(this, data, isBinary);
    };
    this.onClose = function (this: WebSocket) {
      const connection = connectionOf(this);
      if (connection) registry.remove(connection.id);
    };
  }

  /** Where the socket is served. */
  get wsPath(): string {
    return this.path;
  }

  onApplicationBootstrap(): void {
    const httpServer = this.adapterHost.httpAdapter?.getHttpServer() as Server | undefined;
    if (!httpServer || typeof httpServer.on !== 'function') {
      throw new Error(
        `the chat's socket (${this.path}) is served by the app's HTTP server, and this app has none: create it with NestFactory.create(...) (not createApplicationContext or a microservice)`,
      );
    }
    const clash = hostGatewaysOn(this.discovery, this.path);
    if (clash.length) {
      throw new Error(
        `${clash.join(', ')} ${clash.length > 1 ? 'are WebSocket gateways' : 'is a WebSocket gateway'} on ${this.path}, the chat's socket path, on the app's HTTP server: ` +
          `give ${clash.length > 1 ? 'them' : 'it'} another path or port, or mount the chat's socket elsewhere (ChatSystemModule.forRoot({ wsPath }))`,
      );
    }
    this.table = this.router.build();
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: this.env.WS_MAX_PAYLOAD,
      // The registry knows every socket; ws's own set would cost a closure and a listener per socket.
      clientTracking: false,
      handleProtocols: selectProtocol,
    });
    this.wss.on('error', (error: Error) => log.error(`WebSocket server error: ${error.message}`));
    this.attach(httpServer);
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.env.WS_PING_INTERVAL_MS);
    this.heartbeatTimer.unref();
  }

  /**
   * Our listener goes first, and every other `upgrade` listener of the server, there now (a host's
   * `WsAdapter` or Socket.IO) or added later (a `new WebSocketServer({ server })` after `listen()`, an
   * adapter bound after us), is wrapped so that it never sees our path: ws's server destroys every
   * upgrade it does not serve, or serves all of them when it has no path. The upgrades of other
   * paths reach them exactly as before. A wrapper carries its original as `listener`, as Node's own
   * `once` wrappers do, so `server.listeners('upgrade')` still lists the original and
   * `server.removeListener('upgrade', original)` (ws's `close()`) removes the wrapper.
   */
  private attach(server: Server): void {
    this.httpServer = server;
    this.wrapOthers();
    server.on('newListener', this.onNewListener);
  }

  /** Rebuilds the server's `upgrade` listeners in order: ours first, every other one wrapped. */
  private wrapOthers(): void {
    const server = this.httpServer;
    if (!server) return;
    const listeners = server.rawListeners('upgrade') as UpgradeListener[];
    const others = listeners.filter((listener) => listener !== this.onUpgrade);
    if (listeners[0] === this.onUpgrade && others.every((listener) => this.wrappers.has(listener))) return;
    this.rebuilding = true;
    try {
      server.removeAllListeners('upgrade');
      server.on('upgrade', this.onUpgrade);
      for (const listener of others) server.on('upgrade', this.wrappers.has(listener) ? listener : this.besideUs(listener));
    } finally {
      this.rebuilding = false;
    }
  }

  /** `listener`, never called for our path. */
  private besideUs(listener: UpgradeListener): UpgradeListener {
    const path = this.path;
    const wrapper: UpgradeListener = function (this: Server, request: IncomingMessage, socket: Duplex, head: Buffer) {
      if (pathnameOf(request) !== path) listener.call(this, request, socket, head);
    };
    wrapper.listener = listener.listener ?? listener;
    this.wrappers.add(wrapper);
    return wrapper;
  }

  /**
   * Node emits `newListener` before it adds the listener, so it is wrapped a microtask later: before
   * any upgrade can reach it (upgrades come from I/O callbacks, which run after microtasks).
   */
  private readonly onNewListener = (event: string | symbol, listener: UpgradeListener): void => {
    if (event !== 'upgrade' || this.rebuilding || listener === this.onUpgrade || this.wrappers.has(listener) || this.closed) return;
    queueMicrotask(() => this.wrapOthers());
  };

  private readonly onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (pathnameOf(request) !== this.path) {
      // Alone on the server, we stand in for Node's default: an upgrade nobody serves is dropped.
      if (this.httpServer?.listenerCount('upgrade') === 1) socket.destroy();
      return;
    }
    if (this.closed || !this.wss) return refuse(socket, 503, 'Service Unavailable');
    const auth = this.upgradeAuth?.authenticate;
    if (!auth) return this.upgrade(request, socket, head, NO_CHECK_USER);
    auth(request).then(
      (verdict) => (verdict.ok ? this.upgrade(request, socket, head, verdict.user) : refuse(socket, verdict.status, verdict.message)),
      (error: unknown) => {
        log.error(`upgrade check failed: ${String(error)}`);
        refuse(socket, 500, 'Internal Server Error');
      },
    );
  };

  private upgrade(request: IncomingMessage, socket: Duplex, head: Buffer, user: ConnectionUser): void {
    const wss = this.wss;
    if (this.closed || !wss || !socket.writable) return void socket.destroy();
    wss.handleUpgrade(request, socket, head, (ws) => this.onConnection(ws, user));
  }

  private onConnection(socket: WebSocket, user: ConnectionUser): void {
    const connection = this.registry.add(socket, user);
    socket.on('error', onSocketError);
    socket.on('pong', onPong);
    socket.on('close', this.onClose);
    socket.on('message', this.onMessage);
    socket.send(JSON.stringify({ type: 'connected', connection_id: connection.id, protocol: PROTOCOL_VERSION }));
  }

  private dispatch(client: WebSocket, data: RawData, isBinary: boolean): void {
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
    const handle = this.table.get(type);
    if (!handle) return send(client, toErrorFrame(invalid('unknown_type', `no handler for type "${type.slice(0, 64)}"`), id));
    handle(client, frame as Frame, type).then(
      (result) => this.deliver(client, result),
      (error: unknown) => send(client, toErrorFrame(error, id)),
    );
  }

  /**
   * What a handler (or a filter) returned: a frame is sent. Nest's pipeline has resolved an
   * Observable result to its last value already (ExternalContextCreator, as for an HTTP route).
   */
  private deliver(client: WebSocket, result: unknown): void {
    if (isFrame(result)) send(client, result);
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

  async beforeApplicationShutdown(): Promise<void> {
    await this.close();
  }

  /** Stops accepting, sends what is corked, terminates every socket and closes the server. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeatTimer);
    this.httpServer?.off('newListener', this.onNewListener);
    const wss = this.wss;
    if (!wss) return;
    // Frames sent in this tick (an answer's end at shutdown) are still corked: terminate drops them.
    this.registry.flushWrites();
    for (const connection of [...this.registry.all()]) {
      if (connection.socket.listeners('close').includes(this.onClose)) connection.socket.terminate();
    }
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  }
}

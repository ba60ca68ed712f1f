import { INestApplicationContext, Logger } from '@nestjs/common';
import { MessageMappingProperties } from '@nestjs/websockets';
import { WsAdapter } from '@nestjs/platform-ws';
import type { IncomingMessage } from 'node:http';
import { EMPTY, isObservable, Observable } from 'rxjs';
import type { RawData, WebSocket, WebSocketServer } from 'ws';
import { AppError, ErrorCode } from '../common/app-error';
import { ConnectionRegistry, ConnectionUser } from './connection-registry';
import { toErrorFrame } from './error-frames';
import { Frame } from './frames';
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
type CheckedRequest = IncomingMessage & { [UPGRADE_USER]?: ConnectionUser };

interface BoundHandler {
  callback: (...args: unknown[]) => unknown;
  transform: (data: unknown) => Observable<unknown>;
}

const HANDLERS = Symbol('frameHandlers');
type Tracked = WebSocket & { [HANDLERS]?: Map<string, BoundHandler> };

/**
 * The `ws` adapter of the protocol. Unlike the stock one, which drops bad frames silently and gives
 * each gateway its own listener, it keeps one dispatch table per socket shared by every gateway on
 * the path, routes frames by `type`, and answers every bad frame with an `error` frame. It also gives
 * each connection its id and `connected` frame, enforces the size limit (close 1009) and pings.
 */
export class FrameWsAdapter extends WsAdapter {
  private readonly log = new Logger(FrameWsAdapter.name);

  constructor(
    app: INestApplicationContext,
    private readonly registry: ConnectionRegistry,
    private readonly options: FrameAdapterOptions,
  ) {
    super(app, { messageParser: (data) => JSON.parse(String(data)) });
  }

  create(port: number, options: Record<string, unknown> = {}): WebSocketServer {
    const path = options.path === WS_PATH && this.options.path ? this.options.path : (options.path as string | undefined);
    const server: WebSocketServer = super.create(port, {
      ...options,
      path,
      maxPayload: this.options.maxPayload,
      verifyClient: (info: { req: CheckedRequest }, done: (ok: boolean, status?: number, message?: string) => void) =>
        this.verify(info.req, done),
    });
    server.on('connection', (socket: WebSocket, request: CheckedRequest) => this.onConnection(socket, request));
    const timer = setInterval(() => this.heartbeat(), this.options.pingIntervalMs);
    timer.unref();
    server.on('close', () => clearInterval(timer));
    return server;
  }

  /** Socket errors are the client's (oversized frame, bad opcode): ws closes the socket itself. */
  bindErrorHandler(server: WebSocketServer): WebSocketServer {
    server.on('connection', (socket: WebSocket) =>
      socket.on('error', (error: Error & { code?: string }) => this.log.debug(`socket closed on error ${error.code ?? error.message}`)),
    );
    server.on('error', (error: Error) => this.log.error(`WebSocket server error: ${error.message}`));
    return server;
  }

  bindMessageHandlers(
    client: Tracked,
    handlers: MessageMappingProperties[],
    transform: (data: unknown) => Observable<unknown>,
  ): void {
    let table = client[HANDLERS];
    if (!table) {
      table = new Map();
      client[HANDLERS] = table;
      const bound = table;
      client.on('message', (data: RawData, isBinary: boolean) => this.dispatch(client, bound, data, isBinary));
    }
    for (const handler of handlers) {
      table.set(handler.message as string, { callback: handler.callback as BoundHandler['callback'], transform });
    }
  }

  private verify(request: CheckedRequest, done: (ok: boolean, status?: number, message?: string) => void): void {
    if (!this.options.authenticate) {
      request[UPGRADE_USER] = { id: 'local' };
      return done(true);
    }
    this.options.authenticate(request).then(
      (verdict) => {
        if (!verdict.ok) return done(false, verdict.status, verdict.message);
        request[UPGRADE_USER] = verdict.user;
        done(true);
      },
      (error: unknown) => {
        this.log.error(`upgrade check failed: ${String(error)}`);
        done(false, 500, 'Internal Server Error');
      },
    );
  }

  private onConnection(socket: WebSocket, request: CheckedRequest): void {
    const connection = this.registry.add(socket, request[UPGRADE_USER]);
    socket.on('pong', () => (connection.alive = true));
    socket.on('close', () => this.registry.remove(connection.id));
    socket.send(JSON.stringify({ type: 'connected', connection_id: connection.id, protocol: PROTOCOL_VERSION }));
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

  private dispatch(client: WebSocket, table: Map<string, BoundHandler>, data: RawData, isBinary: boolean): void {
    const reply = (frame: Frame) => {
      if (client.readyState === 1) client.send(JSON.stringify(frame));
    };
    let frame: unknown;
    try {
      if (isBinary) throw new Error('binary');
      frame = JSON.parse(String(data));
    } catch {
      return reply(toErrorFrame(invalid('invalid_json', 'the frame is not JSON text')));
    }
    if (frame === null || typeof frame !== 'object' || Array.isArray(frame)) {
      return reply(toErrorFrame(invalid('invalid_message', 'type: a frame is a JSON object with a string type', 'type')));
    }
    const { id, type } = frame as Frame;
    if (id !== undefined && typeof id !== 'string') {
      return reply(toErrorFrame(invalid('invalid_message', 'id: must be a string', 'id')));
    }
    if (typeof type !== 'string' || type === '') {
      return reply(toErrorFrame(invalid('invalid_message', 'type: must be a non-empty string', 'type'), id));
    }
    if (type === 'ping') return reply(id === undefined ? { type: 'pong' } : { type: 'pong', id });
    const handler = table.get(type);
    if (!handler) return reply(toErrorFrame(invalid('unknown_type', `no handler for type "${type.slice(0, 64)}"`), id));

    let result$: Observable<unknown>;
    try {
      result$ = handler.transform(handler.callback(frame, type));
    } catch (error) {
      return reply(toErrorFrame(error, id));
    }
    if (!isObservable(result$)) result$ = EMPTY;
    result$.subscribe({
      next: (response) => {
        if (response !== undefined && response !== null) reply(response as Frame);
      },
      error: (error) => reply(toErrorFrame(error, id)),
    });
  }
}

function invalid(code: ErrorCode, message: string, field?: string): AppError {
  return new AppError(code, message, field ? { field } : {});
}

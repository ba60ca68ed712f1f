import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { WebSocket } from 'ws';
import { Frame } from './frames';

/** Who a socket belongs to, as the upgrade check found it. */
export interface ConnectionUser {
  id: string;
  /** Identifies the login session, so its sockets can be closed at logout. */
  sessionKey?: string;
}

export interface Connection {
  readonly id: string;
  readonly socket: WebSocket;
  /** Rooms this connection watches (e.g. `chat:<uuid>`). */
  readonly rooms: Set<string>;
  /** Answered the last ping. */
  alive: boolean;
  /** Highest `seq` sent per message, so a connection never receives the same piece twice. */
  readonly sentSeq: Map<string, number>;
  /** Set by the upgrade check; undefined only where no check is configured. */
  user?: ConnectionUser;
  /** Free slot for modules that attach per-connection facts. */
  readonly data: Record<string, unknown>;
}

const CONNECTION_ID = Symbol('connectionId');

/** The id the adapter gave a socket. */
export function connectionIdOf(socket: WebSocket): string {
  return (socket as unknown as Record<symbol, string>)[CONNECTION_ID];
}

const OPEN = 1;

/**
 * Every open socket, its state and its rooms. Frames to a room are serialized once and written to
 * each member; this is the hot path of streaming, so it does no validation and no logging.
 */
@Injectable()
export class ConnectionRegistry {
  private readonly connections = new Map<string, Connection>();
  private readonly rooms = new Map<string, Set<Connection>>();

  add(socket: WebSocket, user?: ConnectionUser): Connection {
    const connection: Connection = {
      id: randomUUID(),
      socket,
      user,
      rooms: new Set(),
      alive: true,
      sentSeq: new Map(),
      data: {},
    };
    (socket as unknown as Record<symbol, string>)[CONNECTION_ID] = connection.id;
    this.connections.set(connection.id, connection);
    return connection;
  }

  remove(id: string): void {
    const connection = this.connections.get(id);
    if (!connection) return;
    for (const room of connection.rooms) this.leave(id, room);
    this.connections.delete(id);
  }

  get(id: string): Connection | undefined {
    return this.connections.get(id);
  }

  /** The user of a connection; throws when the socket is gone or was never authenticated. */
  userOf(id: string): ConnectionUser {
    const user = this.connections.get(id)?.user;
    if (!user) throw new Error(`connection ${id} has no user`);
    return user;
  }

  get size(): number {
    return this.connections.size;
  }

  all(): IterableIterator<Connection> {
    return this.connections.values();
  }

  join(id: string, room: string): void {
    const connection = this.connections.get(id);
    if (!connection || connection.rooms.has(room)) return;
    connection.rooms.add(room);
    let members = this.rooms.get(room);
    if (!members) this.rooms.set(room, (members = new Set()));
    members.add(connection);
  }

  leave(id: string, room: string): void {
    const connection = this.connections.get(id);
    if (!connection) return;
    connection.rooms.delete(room);
    const members = this.rooms.get(room);
    if (!members) return;
    members.delete(connection);
    if (members.size === 0) this.rooms.delete(room);
  }

  isInRoom(id: string, room: string): boolean {
    return this.connections.get(id)?.rooms.has(room) ?? false;
  }

  /** Sends one frame to one connection; false when it is gone or the frame was already sent. */
  send(id: string, frame: Frame): boolean {
    const connection = this.connections.get(id);
    if (!connection) return false;
    return this.deliver(connection, frame, undefined);
  }

  /** Sends one frame to every connection in the room, serialized once. */
  publish(room: string, frame: Frame): void {
    const members = this.rooms.get(room);
    if (!members) return;
    let data: string | undefined;
    for (const connection of members) {
      data ??= JSON.stringify(frame);
      this.deliver(connection, frame, data);
    }
  }

  /** Sends to every open connection. */
  broadcast(frame: Frame): void {
    const data = JSON.stringify(frame);
    for (const connection of this.connections.values()) this.deliver(connection, frame, data);
  }

  private deliver(connection: Connection, frame: Frame, data: string | undefined): boolean {
    if (connection.socket.readyState !== OPEN) return false;
    const messageId = frame.message_id as string | undefined;
    if (messageId !== undefined) {
      const seq = frame.seq as number | undefined;
      if (frame.type === 'agent_response_end') {
        connection.sentSeq.delete(messageId);
      } else if (seq !== undefined) {
        if (seq <= (connection.sentSeq.get(messageId) ?? 0)) return false;
        connection.sentSeq.set(messageId, seq);
      }
    }
    connection.socket.send(data ?? JSON.stringify(frame));
    return true;
  }
}

import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
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
  /** Created on first join: most of an idle socket's memory is what it does not allocate. */
  rooms?: Set<string>;
  /** Answered the last ping. */
  alive: boolean;
  /**
   * The `seq`s sent per message (`SentSeqs`), so a connection never receives the same piece twice,
   * while a piece it never got (lost on the way, or from before it came in) can still be replayed.
   */
  sentSeq?: Map<string, SentSeqs>;
  /**
   * Messages being replayed to this connection: their live frames wait here until the replay is done
   * (`null` once the replay sent the message's end: that is the whole answer, later live frames are dropped).
   */
  held?: Map<string, Array<{ frame: Frame; data: string | undefined }> | null>;
  /** Set by the upgrade check; undefined only where no check is configured. */
  user?: ConnectionUser;
}

const CONNECTION = Symbol('connection');
type Registered = WebSocket & { [CONNECTION]?: Connection };

/** The connection of a socket, kept on the socket itself (also once it is closed and removed). */
export function connectionOf(socket: WebSocket): Connection | undefined {
  return (socket as Registered)[CONNECTION];
}

/** The id the adapter gave a socket. */
export function connectionIdOf(socket: WebSocket): string {
  return (socket as Registered)[CONNECTION]?.id as string;
}

const OPEN = 1;

/** ws keeps the connection's TCP socket here (private to ws, the same since ws 1; absent on fakes). */
type WithRawSocket = WebSocket & { _socket?: Duplex };

/**
 * Every open socket, its state and its rooms. Frames to a room are serialized once and written to
 * each member; this is the hot path of streaming, so it does no validation and no logging.
 */
@Injectable()
export class ConnectionRegistry {
  private readonly connections = new Map<string, Connection>();
  private readonly rooms = new Map<string, Set<Connection>>();
  /**
   * Open connections per user, kept as they come and go (the upgrade check reads it), and the user
   * object its sockets share: sockets of one login session (tabs of a browser) hold one object, not one each.
   */
  private readonly perUser = new Map<string, { count: number; user: ConnectionUser }>();
  /** TCP sockets corked since this tick began: see `write`. */
  private readonly corked = new Set<Duplex>();
  private readonly uncorkAll = (): void => {
    for (const raw of this.corked) raw.uncork();
    this.corked.clear();
  };
  /** Told when a room gets its first member here and when it loses its last (Redis subscriptions). */
  private roomListener?: (room: string, active: boolean) => void;

  onRoomActivity(listener: (room: string, active: boolean) => void): void {
    this.roomListener = listener;
  }

  /** True when some connection of this process watches the room. */
  hasRoom(room: string): boolean {
    return this.rooms.has(room);
  }

  add(socket: WebSocket, user?: ConnectionUser): Connection {
    const connection: Connection = {
      id: randomUUID(),
      socket,
      user: user && this.countIn(user),
      alive: true,
    };
    (socket as Registered)[CONNECTION] = connection;
    this.connections.set(connection.id, connection);
    return connection;
  }

  /** Counts one more socket of the user; the object to keep for it (only `id` and `sessionKey` are read). */
  private countIn(user: ConnectionUser): ConnectionUser {
    const entry = this.perUser.get(user.id);
    const kept =
      entry && entry.user.sessionKey === user.sessionKey
        ? entry.user
        : user.sessionKey === undefined
          ? { id: user.id }
          : { id: user.id, sessionKey: user.sessionKey };
    if (entry) entry.count++;
    else this.perUser.set(user.id, { count: 1, user: kept });
    return kept;
  }

  remove(id: string): void {
    const connection = this.connections.get(id);
    if (!connection) return;
    for (const room of connection.rooms ?? []) this.leave(id, room);
    this.connections.delete(id);
    if (connection.user) {
      const entry = this.perUser.get(connection.user.id);
      if (entry && --entry.count <= 0) this.perUser.delete(connection.user.id);
    }
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

  /** How many open connections belong to this user. */
  countFor(userId: string): number {
    return this.perUser.get(userId)?.count ?? 0;
  }

  get size(): number {
    return this.connections.size;
  }

  all(): IterableIterator<Connection> {
    return this.connections.values();
  }

  join(id: string, room: string): void {
    const connection = this.connections.get(id);
    if (!connection || connection.rooms?.has(room)) return;
    (connection.rooms ??= new Set()).add(room);
    let members = this.rooms.get(room);
    if (!members) {
      this.rooms.set(room, (members = new Set()));
      this.roomListener?.(room, true);
    }
    members.add(connection);
  }

  leave(id: string, room: string): void {
    const connection = this.connections.get(id);
    if (!connection) return;
    connection.rooms?.delete(room);
    const members = this.rooms.get(room);
    if (!members) return;
    members.delete(connection);
    if (members.size === 0) {
      this.rooms.delete(room);
      this.roomListener?.(room, false);
    }
  }

  isInRoom(id: string, room: string): boolean {
    return this.connections.get(id)?.rooms?.has(room) ?? false;
  }

  /** Sends one frame to one connection; false when it is gone or the frame was already sent. */
  send(id: string, frame: Frame): boolean {
    const connection = this.connections.get(id);
    if (!connection) return false;
    return this.deliver(connection, frame, undefined);
  }

  /** Sends a replayed frame, past any hold on its message. */
  sendReplay(id: string, frame: Frame): boolean {
    const connection = this.connections.get(id);
    if (!connection) return false;
    return this.deliver(connection, frame, undefined, true);
  }

  /** Sends one frame to every connection in the room, serialized once (or already, as `data`). */
  publish(room: string, frame: Frame, data?: string): void {
    const members = this.rooms.get(room);
    if (!members) return;
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

  /**
   * Live frames of `messageId` (an answer's `message_id`, or a Solver run's `run_id`) to this
   * connection wait until `release` (a replay is being read).
   */
  hold(id: string, messageId: string): void {
    const connection = this.connections.get(id);
    if (!connection) return;
    connection.held ??= new Map();
    if (!connection.held.has(messageId)) connection.held.set(messageId, []);
  }

  /**
   * Sends what waited, in order; the seq guard drops what the replay already gave. With `deliver`
   * false what waited is dropped (the replay was taken after it, so it holds it already).
   */
  release(id: string, messageId: string, deliver = true): void {
    const connection = this.connections.get(id);
    if (!connection?.held?.has(messageId)) return;
    const waiting = connection.held.get(messageId);
    connection.held.delete(messageId);
    if (connection.held.size === 0) connection.held = undefined;
    if (deliver) for (const { frame, data } of waiting ?? []) this.deliver(connection, frame, data);
  }

  private deliver(connection: Connection, frame: Frame, data: string | undefined, replay = false): boolean {
    if (connection.socket.readyState !== OPEN) return false;
    // Frames of one stream: an answer (message_id) or a Solver run (run_id).
    const streamId = (frame.message_id ?? frame.run_id) as string | undefined;
    if (streamId !== undefined && !replay && connection.held?.has(streamId)) {
      connection.held.get(streamId)?.push({ frame, data });
      return true;
    }
    if (streamId !== undefined) {
      const seq = frame.seq as number | undefined;
      if (endsStream(frame)) {
        connection.sentSeq?.delete(streamId);
        // The end clears the seq guard, so held live frames would pass it again: drop them instead.
        if (replay && connection.held?.has(streamId)) connection.held.set(streamId, null);
      } else if (seq !== undefined) {
        const sent = (connection.sentSeq ??= new Map()).get(streamId);
        if (!sent) connection.sentSeq.set(streamId, [seq, seq]);
        else if (!markSent(sent, seq)) return false;
      }
    }
    this.write(connection.socket, data ?? JSON.stringify(frame));
    return true;
  }

  /** Writes now what this tick's frames left corked (before sockets are terminated: shutdown). */
  flushWrites(): void {
    this.uncorkAll();
  }

  /**
   * Frames to one socket in one tick (with the promise callbacks it runs) leave in one TCP write: a
   * turn's `chat_created`, `user_message` and `agent_response_start` go out together, a write that
   * wakes the reader costs ~0.15 ms here (bench/findings.md). The socket is corked at its first
   * frame and uncorked when the tick ends (`process.nextTick`, so no frame waits for the event loop).
   */
  private write(socket: WebSocket, data: string): void {
    const raw = (socket as WithRawSocket)._socket;
    if (raw && !this.corked.has(raw)) {
      if (this.corked.size === 0) process.nextTick(this.uncorkAll);
      raw.cork();
      this.corked.add(raw);
    }
    socket.send(data);
  }
}

/**
 * The seqs sent of one message, as ascending ranges apart from each other: `[from, to, from, to, …]`.
 * Live pieces come in order, so it is one range (from the first piece this connection got); a gap
 * (pieces lost on the way, Redis restarted) is a second one until a replay fills it.
 */
type SentSeqs = number[];

/** Adds `seq` to the ranges; false when it was sent already. */
function markSent(ranges: SentSeqs, seq: number): boolean {
  const last = ranges.length - 1;
  // The usual case: the piece after the last one sent, or a piece after a gap.
  if (seq === ranges[last] + 1) {
    ranges[last] = seq;
    return true;
  }
  if (seq > ranges[last]) {
    ranges.push(seq, seq);
    return true;
  }
  for (let i = 0; i < ranges.length; i += 2) {
    if (seq > ranges[i + 1]) continue;
    if (seq >= ranges[i]) return false;
    // Below this range and above the one before (if any): join them, or either, or stand alone.
    const joinsBefore = i > 0 && seq === ranges[i - 1] + 1;
    const joinsThis = seq === ranges[i] - 1;
    if (joinsBefore && joinsThis) ranges.splice(i - 1, 2);
    else if (joinsBefore) ranges[i - 1] = seq;
    else if (joinsThis) ranges[i] = seq;
    else ranges.splice(i, 0, seq, seq);
    return true;
  }
  return true; // not reached: `seq` is at most the last range's end
}

/** The last frame of a stream: an answer's end, a run's end, or the error that ends a run. */
export function endsStream(frame: Frame): boolean {
  return (
    frame.type === 'agent_response_end' ||
    frame.type === 'solver_complete' ||
    (frame.type === 'error' && frame.run_id !== undefined && frame.message_id === undefined)
  );
}

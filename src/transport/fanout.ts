import { Injectable, Logger } from '@nestjs/common';
import { RedisService } from '../redis/redis.service';
import { ConnectionRegistry, endsStream } from './connection-registry';
import { Frame } from './frames';

/**
 * Delivers a frame to every viewer of a room, wherever they are connected. The in-memory one serves a
 * single process; the Redis one serves many instances, one channel per room.
 */
export abstract class Fanout {
  abstract publish(room: string, frame: Frame): void;
  /** Makes the connection a viewer of the room; resolves once frames published from now on reach it. */
  abstract join(connectionId: string, room: string): Promise<void>;
}

@Injectable()
export class LocalFanout extends Fanout {
  constructor(private readonly registry: ConnectionRegistry) {
    super();
  }

  publish(room: string, frame: Frame): void {
    this.registry.publish(room, frame);
  }

  async join(connectionId: string, room: string): Promise<void> {
    this.registry.join(connectionId, room);
  }
}

/** How long, and how many, ended streams an instance remembers, to drop frames that come after their end. */
const ENDED_KEPT_MS = 10 * 60_000;
const ENDED_KEPT_MAX = 100_000;

/**
 * Fan-out across instances over Redis pub/sub: one channel per room (never one global channel), each
 * frame serialized once, and an instance subscribes only to the rooms its own sockets watch.
 *
 * A piece or an end of a stream whose end came through here before it is dropped: an instance cut
 * off from Redis (while the others still reach it) may be taken for dead and its answers ended by
 * another, but what it had handed to its Redis connection before it noticed still arrives once the
 * link heals.
 */
@Injectable()
export class RedisFanout extends Fanout {
  private readonly logger = new Logger(RedisFanout.name);
  /** Subscriptions being made, so a join can wait for its room's. */
  private readonly pending = new Map<string, Promise<void>>();
  /** Streams (`message_id` or `run_id`) whose end came through, with when: oldest first. */
  private readonly ended = new Map<string, number>();

  constructor(
    private readonly registry: ConnectionRegistry,
    private readonly redis: RedisService,
  ) {
    super();
    registry.onRoomActivity((room, active) => (active ? this.subscribe(room) : this.unsubscribe(room)));
  }

  publish(room: string, frame: Frame): void {
    this.redis.publish(this.channel(room), JSON.stringify(frame));
  }

  async join(connectionId: string, room: string): Promise<void> {
    this.registry.join(connectionId, room);
    await this.pending.get(room);
  }

  private channel(room: string): string {
    return this.redis.key('room', room);
  }

  private subscribe(room: string): void {
    const done = this.redis
      .subscribe(this.channel(room), (data) => {
        // Parsed once per instance (for the seq guard), written to each socket as received.
        const frame = JSON.parse(data) as Frame;
        if (!this.afterItsEnd(frame)) this.registry.publish(room, frame, data);
      })
      .catch((error: Error) => this.logger.warn(`subscribe ${room}: ${error.message}`))
      .finally(() => {
        if (this.pending.get(room) === done) this.pending.delete(room);
      });
    this.pending.set(room, done);
  }

  /**
   * True for a piece (a frame with a `seq`) or an end of a stream that already ended here; an end is
   * remembered (a while, a bounded number). Other frames that name the stream pass.
   */
  private afterItsEnd(frame: Frame): boolean {
    const stream = (frame.message_id ?? frame.run_id) as string | undefined;
    if (stream === undefined) return false;
    const ends = endsStream(frame);
    if (!ends && typeof frame.seq !== 'number') return false;
    if (this.ended.has(stream)) return true;
    if (!ends) return false;
    const now = Date.now();
    this.ended.set(stream, now);
    for (const [oldest, at] of this.ended) {
      if (this.ended.size <= ENDED_KEPT_MAX && now - at < ENDED_KEPT_MS) break;
      this.ended.delete(oldest);
    }
    return false;
  }

  private unsubscribe(room: string): void {
    void this.redis.unsubscribe(this.channel(room)).catch((error: Error) => this.logger.warn(`unsubscribe ${room}: ${error.message}`));
  }
}

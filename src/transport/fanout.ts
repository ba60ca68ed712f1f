import { Injectable, Logger } from '@nestjs/common';
import { RedisService } from '../redis/redis.service';
import { ConnectionRegistry } from './connection-registry';
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

/**
 * Fan-out across instances over Redis pub/sub: one channel per room (never one global channel), each
 * frame serialized once, and an instance subscribes only to the rooms its own sockets watch.
 */
@Injectable()
export class RedisFanout extends Fanout {
  private readonly logger = new Logger(RedisFanout.name);
  /** Subscriptions being made, so a join can wait for its room's. */
  private readonly pending = new Map<string, Promise<void>>();

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
        this.registry.publish(room, JSON.parse(data) as Frame, data);
      })
      .catch((error: Error) => this.logger.warn(`subscribe ${room}: ${error.message}`))
      .finally(() => {
        if (this.pending.get(room) === done) this.pending.delete(room);
      });
    this.pending.set(room, done);
  }

  private unsubscribe(room: string): void {
    void this.redis.unsubscribe(this.channel(room)).catch((error: Error) => this.logger.warn(`unsubscribe ${room}: ${error.message}`));
  }
}

import { type RedisService } from '../redis/redis.service';

/** ioredis's default retry strategy waits at most this long between two reconnection attempts. */
const RECONNECT_DELAY_MAX_MS = 2000;

/**
 * Which instances still say they are alive, with Redis: each sets its key every heartbeat, for
 * three heartbeats. An instance is taken for dead only when its key has been missing from every
 * look of this one for two heartbeats more: a key lost with a Redis restart (no persistence), or
 * expired while Redis was frozen, is set again by its owner's next beat, so no answer is ended under
 * a live instance. A killed one is found within about six heartbeats.
 */
export class InstanceLiveness {
  /** Instances whose key was missing, since when (this instance's clock, from a look that answered). */
  private readonly missingSince = new Map<string, number>();
  /** Until then no key counts as missing: the other instances may still be reconnecting (see `reconnected`). */
  private graceUntil = 0;
  /** How long a beat keeps the key: past it, an instance that beat no more counts as stalled. */
  readonly keyLifetimeMs: number;

  constructor(
    private readonly redis: RedisService,
    private readonly heartbeatMs: number,
  ) {
    this.keyLifetimeMs = heartbeatMs * 3;
  }

  beat(): Promise<unknown> {
    return this.redis.client.set(this.key(this.redis.instanceId), '1', 'PX', this.keyLifetimeMs);
  }

  forget(): Promise<unknown> {
    return this.redis.client.del(this.key(this.redis.instanceId));
  }

  /**
   * Those of `ids` that stopped beating, each with the time its key was first found missing (every
   * other id is forgotten): a row its instance wrote after that shows it is not dead after all.
   */
  async dead(ids: Iterable<string>): Promise<Map<string, number>> {
    const asked = [...new Set(ids)];
    const present = await Promise.all(asked.map((id) => this.redis.client.exists(this.key(id))));
    const now = Date.now();
    if (now < this.graceUntil) return new Map();
    const dead = new Map<string, number>();
    const missing = new Map<string, number>();
    asked.forEach((id, index) => {
      if (present[index] === 1) return;
      const since = this.missingSince.get(id) ?? now;
      missing.set(id, since);
      if (now - since >= this.heartbeatMs * 2) dead.set(id, since);
    });
    this.missingSince.clear();
    for (const [id, since] of missing) this.missingSince.set(id, since);
    return dead;
  }

  /**
   * This instance's Redis connection came back (Redis may have restarted empty): every instance's key
   * may be gone, and the others reconnect on their own schedule, up to ioredis's longest retry delay
   * later than this one. Until that delay and two heartbeats have passed, no key counts as missing.
   */
  reconnected(): void {
    this.missingSince.clear();
    this.graceUntil = Date.now() + RECONNECT_DELAY_MAX_MS + this.heartbeatMs * 2;
  }

  private key(instanceId: string): string {
    return this.redis.key('instance', instanceId);
  }
}

import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { AppError } from '../common/app-error';
import { Environment } from '../config/environment';
import { RedisService } from '../redis/redis.service';
import { SlidingWindowLimiter } from './sliding-window.limiter';

const WINDOW_MS = 60_000;

/**
 * The sliding window in Redis (a sorted set of timestamps per user), atomic in one script: prune,
 * count, then add only when allowed, so refused attempts do not count (an empty member only asks).
 * Returns 0 or the wait in ms.
 */
const SLIDING_WINDOW_LUA = `
local key, now, window, limit, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, 0, now - window)
if redis.call('ZCARD', key) >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now)
end
if member ~= '' then
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, window)
end
return 0`;

/**
 * Per-user limits on what costs model money: `RATE_LIMIT_PER_MINUTE` messages (`user_message`,
 * `regenerate`, `solve`) in a sliding minute, shared by all instances when Redis is set.
 */
@Injectable()
export class RateLimits {
  /** The in-process windows (without Redis), one per kind of event. */
  private readonly windows = new Map<string, SlidingWindowLimiter>();

  constructor(
    private readonly env: Environment,
    private readonly redis: RedisService,
  ) {}

  /**
   * Counts one event of `kind` for `key`: at most `limit` (`0` = no limit) in any `windowMs`, in
   * Redis when it is set (shared by all instances). Returns 0 when allowed, else the wait in ms.
   */
  consume(kind: string, key: string, limit: number, windowMs: number): Promise<number> {
    return this.window(kind, key, limit, windowMs, randomUUID());
  }

  /** As `consume`, but only asks: the wait one more event of `kind` for `key` would have. */
  wait(kind: string, key: string, limit: number, windowMs: number): Promise<number> {
    return this.window(kind, key, limit, windowMs, '');
  }

  /** Forgets the events of `kind` for `key` (a successful login clears its failures). */
  async reset(kind: string, key: string): Promise<void> {
    if (this.redis.enabled) await this.redis.client.del(this.redis.key(kind, key));
    else this.windows.get(kind)?.reset(key);
  }

  private async window(kind: string, key: string, limit: number, windowMs: number, member: string): Promise<number> {
    if (limit <= 0) return 0;
    if (this.redis.enabled) {
      return Number(await this.redis.client.eval(SLIDING_WINDOW_LUA, 1, this.redis.key(kind, key), Date.now(), windowMs, limit, member));
    }
    let window = this.windows.get(kind);
    if (!window) this.windows.set(kind, (window = new SlidingWindowLimiter(limit, windowMs)));
    return member ? window.consume(key) : window.wait(key);
  }

  /** Counts one message of `userId`, or throws `rate_limited` with `retry_after_ms`. */
  async consumeMessage(userId: string): Promise<void> {
    const wait = await this.consume('rate', userId, this.env.RATE_LIMIT_PER_MINUTE, WINDOW_MS);
    if (wait > 0) {
      throw new AppError('rate_limited', `too many messages; try again in ${Math.ceil(wait / 1000)} s`, { retry_after_ms: wait });
    }
  }

  /** Throws `rate_limited` when the user already has the most answers running at once. */
  checkRunning(running: number): void {
    const most = this.env.MAX_RUNNING_PER_USER;
    if (running >= most) {
      throw new AppError('rate_limited', `at most ${most} answers may stream at once`, { retry_after_ms: 1000 });
    }
  }
}

/**
 * A sliding-window counter per key: at most `limit` events in any `windowMs`. Refused attempts do
 * not count. Memory stays bounded: keys with no recent events are dropped as they are touched and
 * by a periodic sweep.
 */
export class SlidingWindowLimiter {
  private readonly events = new Map<string, number[]>();
  private lastSweep = Date.now();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  /** Counts one event; returns 0 when allowed, else the milliseconds until one is allowed again. */
  consume(key: string, now = Date.now()): number {
    if (this.limit <= 0) return 0;
    this.sweep(now);
    const times = this.recent(key, now);
    const wait = this.waitFor(times, now);
    if (wait > 0) return wait;
    times.push(now);
    this.events.set(key, times);
    return 0;
  }

  /** 0 when one more event would be allowed, else the milliseconds until it is; counts nothing. */
  wait(key: string, now = Date.now()): number {
    if (this.limit <= 0) return 0;
    return this.waitFor(this.recent(key, now), now);
  }

  reset(key: string): void {
    this.events.delete(key);
  }

  /** The key's events still inside the window (older ones dropped from the map as well). */
  private recent(key: string, now: number): number[] {
    const times = (this.events.get(key) ?? []).filter((t) => t > now - this.windowMs);
    if (times.length) this.events.set(key, times);
    else this.events.delete(key);
    return times;
  }

  private waitFor(times: number[], now: number): number {
    return times.length >= this.limit ? Math.max(1, times[0] + this.windowMs - now) : 0;
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < this.windowMs) return;
    this.lastSweep = now;
    for (const [key, times] of this.events) {
      if (!times.length || times[times.length - 1] <= now - this.windowMs) this.events.delete(key);
    }
  }
}

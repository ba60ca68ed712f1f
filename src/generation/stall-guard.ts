import { Logger } from '@nestjs/common';
import { type Frame } from '../transport/frames';
import { type Generation } from './generation';

/**
 * An instance frozen for longer than its heartbeat key lives (a stopped process, a suspended host, a
 * long pause) may have been taken for dead and its answers ended as `interrupted` by another. Thawed,
 * it must send nothing more of those: from the moment it notices (its clock says the last confirmed
 * beat is older than the key's lifetime), its frames wait while `recheck` beats again and drops the
 * answers ended meanwhile (they are `abandoned`); then what waited goes out, in order.
 */
export class StallGuard {
  private readonly logger = new Logger(StallGuard.name);
  private beatAt = Date.now();
  private checking?: Promise<void>;
  private waiting: Array<[Generation, Frame]> = [];

  constructor(
    private readonly lifetimeMs: number,
    private readonly recheck: () => Promise<void>,
    private readonly publish: (generation: Generation, frame: Frame) => void,
  ) {}

  /** A beat was confirmed: it counts unless this instance was stalled before it. */
  beaten(): void {
    if (!this.stalled()) this.beatAt = Date.now();
  }

  /** True (and the frame kept) while frames must wait. */
  hold(generation: Generation, frame: Frame): boolean {
    if (!this.stalled()) return false;
    this.waiting.push([generation, frame]);
    return true;
  }

  private stalled(): boolean {
    if (!this.checking && Date.now() - this.beatAt > this.lifetimeMs) this.checking = this.afterStall();
    return this.checking !== undefined;
  }

  private async afterStall(): Promise<void> {
    this.logger.warn(`no heartbeat confirmed for ${Date.now() - this.beatAt} ms: checking which answers are still ours`);
    try {
      await this.recheck();
    } catch (error) {
      this.logger.warn(`after a stall: ${String(error)}`);
    } finally {
      this.beatAt = Date.now();
      const waiting = this.waiting;
      this.waiting = [];
      this.checking = undefined;
      for (const [generation, frame] of waiting) if (!generation.abandoned) this.publish(generation, frame);
    }
  }
}

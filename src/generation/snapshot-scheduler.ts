import { Logger } from '@nestjs/common';
import type { MessageSnapshot } from '../storage/messages.repository';
import type { Generation } from './generation';

/**
 * The text of streaming answers reaches the database about once an interval, never per piece: one
 * timer for all of them (started with the first, stopped when none runs), and every answer whose
 * text changed since its last snapshot in one write. A write still under way skips the tick; a failed
 * one marks its answers to be written again on the next.
 */
export class SnapshotScheduler {
  private readonly logger = new Logger('GenerationService');
  private timer?: NodeJS.Timeout;
  private writing = false;

  constructor(
    private readonly intervalMs: number,
    /** The running answers, each with its pending text sent (so its text is what viewers got). */
    private readonly running: () => Iterable<Generation>,
    private readonly write: (snapshots: MessageSnapshot[]) => Promise<void>,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async tick(): Promise<void> {
    if (this.writing) return; // the last one is still being written
    const due: Generation[] = [];
    const snapshots: MessageSnapshot[] = [];
    for (const generation of this.running()) {
      const snapshot = generation.takeSnapshot();
      if (snapshot === undefined) continue;
      due.push(generation);
      snapshots.push(snapshot);
    }
    if (!due.length) return;
    this.writing = true;
    try {
      await this.write(snapshots);
    } catch (error) {
      this.logger.warn(`snapshot of ${due.length} message(s) failed: ${String(error)}`);
      for (const generation of due) generation.snapshotFailed(); // tried again next time
    } finally {
      this.writing = false;
    }
  }
}

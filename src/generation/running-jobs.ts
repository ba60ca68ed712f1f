import { AppError } from '../common/app-error';
import type { StopRegistry } from './stop.registry';

/** What every job has: a promise that settles when it has ended, whatever the path. */
export interface Job {
  readonly done: Promise<unknown>;
}

/**
 * The jobs of one kind running in this process (chat answers, Solver runs), with the lifecycle they
 * share: refused once shutdown began, counted per owner, stoppable through the `StopRegistry` while
 * they run, taken out exactly once when they end, and drained on shutdown.
 */
export class RunningJobs<J extends Job> {
  private readonly jobs = new Map<string, { job: J; ownerId: string; unregisterStop: () => void }>();
  private readonly perOwner = new Map<string, number>();
  private accepting = true;

  constructor(private readonly stops: StopRegistry) {}

  /** False once shutdown began: new jobs are refused. */
  get isAccepting(): boolean {
    return this.accepting;
  }

  get size(): number {
    return this.jobs.size;
  }

  get(id: string): J | undefined {
    return this.jobs.get(id)?.job;
  }

  values(): J[] {
    return [...this.jobs.values()].map((entry) => entry.job);
  }

  /** How many of the owner's jobs run here. */
  countFor(ownerId: string): number {
    return this.perOwner.get(ownerId) ?? 0;
  }

  /** `shutting_down` once shutdown began. */
  assertAccepting(): void {
    if (!this.accepting) throw new AppError('shutting_down', 'the server is shutting down; try again shortly');
  }

  /** A job that starts running: a `stop` of its id by its owner calls `stop`. */
  add(id: string, ownerId: string, job: J, stop: () => void): void {
    this.jobs.set(id, { job, ownerId, unregisterStop: this.stops.register(id, ownerId, stop) });
    this.perOwner.set(ownerId, this.countFor(ownerId) + 1);
  }

  /** The job is ending: a `stop` no longer reaches it (it is counted until `remove`). */
  ending(id: string): void {
    this.jobs.get(id)?.unregisterStop();
  }

  /** Takes an ended job out (once, whatever the path ended it); false when it was not running. */
  remove(id: string, job: J): boolean {
    const entry = this.jobs.get(id);
    if (entry?.job !== job) return false;
    this.jobs.delete(id);
    entry.unregisterStop();
    const left = this.countFor(entry.ownerId) - 1;
    if (left > 0) this.perOwner.set(entry.ownerId, left);
    else this.perOwner.delete(entry.ownerId);
    return true;
  }

  /**
   * Shutdown: no new jobs; waits up to `timeoutMs` for the running ones to end. Answers those still
   * running then (the caller ends them as interrupted).
   */
  async drain(timeoutMs: number): Promise<J[]> {
    this.accepting = false;
    if (this.jobs.size === 0) return [];
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(this.values().map((job) => job.done)), new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
    return this.values();
  }
}

import { Injectable } from '@nestjs/common';
import { AppError } from '../common/app-error';

/** Answers "does this id name a job of yours that has ended?" for `stop` of a finished job. */
export type EndedLookup = (id: string) => Promise<boolean>;

/**
 * Everything a `stop` frame can end, by id: chat generations (message ids) and Solver runs (run ids).
 * Each module registers its running jobs; a stop of an ended job does nothing, of an unknown one is
 * `not_found`.
 */
@Injectable()
export class StopRegistry {
  private readonly running = new Map<string, () => void>();
  private readonly lookups: EndedLookup[] = [];

  /** Registers a running job; returns the function that unregisters it. */
  register(id: string, stop: () => void): () => void {
    this.running.set(id, stop);
    return () => {
      if (this.running.get(id) === stop) this.running.delete(id);
    };
  }

  addLookup(lookup: EndedLookup): void {
    this.lookups.push(lookup);
  }

  isRunning(id: string): boolean {
    return this.running.has(id);
  }

  async stop(id: string, field: 'message_id' | 'run_id' = 'message_id'): Promise<void> {
    const stop = this.running.get(id);
    if (stop) return stop();
    for (const lookup of this.lookups) if (await lookup(id)) return;
    throw new AppError('not_found', field === 'run_id' ? 'no such run' : 'no such message', { [field]: id });
  }
}

import { Injectable } from '@nestjs/common';
import { AppError } from '../common/app-error';

/** Answers "is this an ended job of this user's?" so a `stop` of a finished job does nothing. */
export type EndedLookup = (id: string, userId: string) => Promise<boolean>;

interface Running {
  ownerId: string;
  stop: () => void;
}

/**
 * Everything a `stop` frame can end, by id: chat generations (message ids) and Solver runs (run ids).
 * Each module registers its running jobs with their owner; a stop of an ended job does nothing, of
 * an unknown one or another user's is `not_found`.
 */
@Injectable()
export class StopRegistry {
  private readonly running = new Map<string, Running>();
  private readonly lookups: EndedLookup[] = [];

  /** Registers a running job; returns the function that unregisters it. */
  register(id: string, ownerId: string, stop: () => void): () => void {
    const entry: Running = { ownerId, stop };
    this.running.set(id, entry);
    return () => {
      if (this.running.get(id) === entry) this.running.delete(id);
    };
  }

  addLookup(lookup: EndedLookup): void {
    this.lookups.push(lookup);
  }

  isRunning(id: string): boolean {
    return this.running.has(id);
  }

  async stop(id: string, userId: string, field: 'message_id' | 'run_id' = 'message_id'): Promise<void> {
    const entry = this.running.get(id);
    if (entry && entry.ownerId === userId) return entry.stop();
    if (!entry) for (const lookup of this.lookups) if (await lookup(id, userId)) return;
    throw new AppError('not_found', field === 'run_id' ? 'no such run' : 'no such message', { [field]: id });
  }
}

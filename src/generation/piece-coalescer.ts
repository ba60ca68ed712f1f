import { Logger } from '@nestjs/common';
import type { Generation } from './generation';

export type PieceKind = 'reasoning' | 'content';

/** Text received for one generation and not yet sent: one kind (a frame carries one kind). */
interface Pending {
  kind: PieceKind;
  text: string;
}

/**
 * Pieces of text that arrive in the same turn of the event loop go out as one frame: they wait here
 * (not yet in the generation's text, `seq` or log) and one shared `setImmediate` sends what every
 * generation has waiting. A piece of the other kind first sends what waits; `flush` sends a
 * generation's waiting text at once (before its usage, error, end, snapshot or a reader's look).
 */
export class PieceCoalescer {
  private readonly logger = new Logger('GenerationService');
  private readonly waiting = new Map<Generation, Pending>();
  private scheduled = false;

  constructor(
    /** Sends one generation's coalesced text as one numbered frame. */
    private readonly send: (generation: Generation, kind: PieceKind, text: string) => void,
  ) {}

  add(generation: Generation, kind: PieceKind, text: string): void {
    const pending = this.waiting.get(generation);
    if (pending !== undefined) {
      if (pending.kind === kind) {
        pending.text += text;
        return;
      }
      this.flush(generation);
    }
    this.waiting.set(generation, { kind, text });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushAll);
    }
  }

  /** Sends a generation's waiting text as one frame (nothing when none waits). */
  flush(generation: Generation): void {
    const pending = this.waiting.get(generation);
    if (pending === undefined) return;
    this.waiting.delete(generation);
    this.send(generation, pending.kind, pending.text);
  }

  /** Drops a generation's waiting text unsent (it was abandoned). */
  drop(generation: Generation): void {
    this.waiting.delete(generation);
  }

  /** Sends every generation's waiting text: once per turn of the event loop. */
  private readonly flushAll = (): void => {
    this.scheduled = false;
    for (const generation of this.waiting.keys()) {
      try {
        this.flush(generation);
      } catch (error) {
        this.logger.error(`could not send pieces of message ${generation.messageId}: ${String(error)}`);
      }
    }
    this.waiting.clear();
  };
}

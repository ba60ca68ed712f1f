import { Logger } from '@nestjs/common';
import { type RedisService } from '../redis/redis.service';
import { type Frame } from '../transport/frames';
import { type Generation } from './generation';

interface MessageText {
  content: string;
  reasoning: string | null;
  seq: number;
}

/** Pieces kept per answer's log (a Redis stream), and how long a log lives, running and ended. */
const MAX_ENTRIES = 20_000;
const RUNNING_TTL_MS = 24 * 3600_000;
const ENDED_TTL_MS = 10 * 60_000;

/**
 * With Redis, every answer's frames in a stream of its own, so any instance can replay it (`resume`)
 * or end it for a dead instance with all that was shown. Appends are auto-pipelined, never awaited.
 */
export class SharedLog {
  private readonly logger = new Logger(SharedLog.name);

  constructor(private readonly redis: RedisService) {}

  /** After the log's first entry (PEXPIRE finds no key before): a running answer's log lives a day. */
  started(messageId: string): void {
    void this.redis.client.pexpire(this.key(messageId), RUNNING_TTL_MS).catch(() => undefined);
  }

  append(messageId: string, frame: Frame): void {
    void this.redis.client
      .xadd(this.key(messageId), 'MAXLEN', '~', String(MAX_ENTRIES), '*', 'f', JSON.stringify(frame))
      .catch((error: Error) => this.redis.pieceFailed('log append', error));
  }

  /** The end frame appended; the log outlives it a while for late `resume`s. */
  ended(messageId: string, end: Frame): void {
    this.append(messageId, end);
    void this.redis.client.pexpire(this.key(messageId), ENDED_TTL_MS).catch(() => undefined);
  }

  /**
   * Redis is back: each running answer's log is written again whole (it may have come back empty,
   * or refused appends meanwhile), in one transaction queued before any later append.
   */
  rewrite(running: Iterable<Generation>): void {
    for (const generation of running) {
      const key = this.key(generation.messageId);
      const batch = this.redis.client.multi().del(key);
      for (const frame of generation.framesAfter(0)) batch.xadd(key, 'MAXLEN', '~', String(MAX_ENTRIES), '*', 'f', JSON.stringify(frame));
      batch.pexpire(key, RUNNING_TTL_MS);
      void batch.exec().catch((error: Error) => this.logger.warn(`log rewrite failed: ${error.message}`));
    }
  }

  /**
   * The log's frames in order, each piece once (an append resent after a reconnection may repeat one),
   * up to the first end (an instance thawed after it was taken for dead may have logged more).
   */
  async read(messageId: string): Promise<Frame[]> {
    let seq = 0;
    const frames: Frame[] = [];
    for (const [, fields] of await this.redis.client.xrange(this.key(messageId), '-', '+')) {
      const frame = JSON.parse(fields[1]) as Frame;
      if (frame.type !== 'agent_response_end') {
        if ((frame.seq as number) <= seq) continue;
        seq = frame.seq as number;
      }
      frames.push(frame);
      if (frame.type === 'agent_response_end') break;
    }
    return frames;
  }

  /** An answer's text: the shared log holds every piece sent, often more than the row's last snapshot. */
  async textOf(row: MessageText & { id: string }): Promise<MessageText> {
    const pieces = (await this.read(row.id)).filter((f) => f.type !== 'agent_response_end');
    const seq = pieces.length ? (pieces[pieces.length - 1].seq as number) : 0;
    if (seq <= row.seq) return { content: row.content, reasoning: row.reasoning, seq: row.seq };
    const join = (type: string) =>
      pieces
        .filter((f) => f.type === type)
        .map((f) => f.content as string)
        .join('');
    return { content: join('agent_response'), reasoning: join('agent_reasoning') || null, seq };
  }

  private key(messageId: string): string {
    return this.redis.key('log', messageId);
  }
}

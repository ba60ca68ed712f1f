import { Injectable, Logger } from '@nestjs/common';
import { RedisService } from '../redis/redis.service';
import type { Frame, SequencedFrame } from '../transport/frames';
import type { Generation } from './generation';

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
 * The log of an answer's frames beyond what this process keeps in memory (a running or recently ended
 * `Generation` is its own log, see `Generation.framesAfter`): what a `resume` of an answer this
 * process does not hold replays, and the text a dead instance's answer ends with. The local one (one
 * process) keeps nothing more; the Redis one keeps every answer's frames where any instance reads them.
 * Written on the hot path (`appended` once per frame sent): implementations never wait there.
 */
export abstract class GenerationLog {
  /** A numbered piece of a running answer, as it was sent. */
  abstract appended(messageId: string, frame: SequencedFrame): void;
  /** The answer's end, as it was sent. */
  abstract ended(messageId: string, end: Frame): void;
  /** Called once at start: the running answers, for a log that must be written again whole (Redis back). */
  abstract keepWhole(running: () => Iterable<Generation>): void;
  /**
   * The frames of an answer this process does not hold, in order up to its end, ready to replay
   * (no live copy of its end still on its way); empty when no log is kept.
   */
  abstract replayable(messageId: string): Promise<Frame[]>;
  /** An answer's text as its log has it (the row's when the log holds no more than the row). */
  abstract textOf(row: MessageText & { id: string }): Promise<MessageText>;
}

/** One process: a running or recently ended answer is its own log; nothing more is kept. */
@Injectable()
export class LocalGenerationLog extends GenerationLog {
  appended(): void {}

  ended(): void {}

  keepWhole(): void {}

  async replayable(): Promise<Frame[]> {
    return [];
  }

  async textOf(row: MessageText): Promise<MessageText> {
    return { content: row.content, reasoning: row.reasoning, seq: row.seq };
  }
}

/**
 * With Redis, every answer's frames in a stream of its own, so any instance can replay it (`resume`)
 * or end it for a dead instance with all that was shown. Appends are auto-pipelined, never awaited.
 */
@Injectable()
export class RedisGenerationLog extends GenerationLog {
  private readonly logger = new Logger(RedisGenerationLog.name);

  constructor(private readonly redis: RedisService) {
    super();
  }

  appended(messageId: string, frame: SequencedFrame): void {
    this.append(messageId, frame);
    // The log exists from its first entry on: its lifetime is set then (an expiry asked for earlier
    // found no key, so a log whose instance died before its end never expired): a running answer's
    // log lives a day.
    if (frame.seq === 1) void this.redis.client.pexpire(this.key(messageId), RUNNING_TTL_MS).catch(() => undefined);
  }

  /** The end frame appended; the log outlives it a while for late `resume`s. */
  ended(messageId: string, end: Frame): void {
    this.append(messageId, end);
    void this.redis.client.pexpire(this.key(messageId), ENDED_TTL_MS).catch(() => undefined);
  }

  keepWhole(running: () => Iterable<Generation>): void {
    this.redis.onReconnect(() => this.rewrite(running()));
  }

  async replayable(messageId: string): Promise<Frame[]> {
    await this.redis.subscriptionsLive();
    const frames = await this.read(messageId);
    // The end was published before it was logged, but on another connection than the one the log
    // was read on: its live copy may still be on its way. Once it is in (held for the viewer while
    // the replay runs), the replayed end drops it; sent after the replay, it would be a second end.
    if (frames.at(-1)?.type === 'agent_response_end') await this.redis.subscriberBarrier();
    return frames;
  }

  private append(messageId: string, frame: Frame): void {
    void this.redis.client
      .xadd(this.key(messageId), 'MAXLEN', '~', String(MAX_ENTRIES), '*', 'f', JSON.stringify(frame))
      .catch((error: Error) => this.redis.pieceFailed('log append', error));
  }

  /**
   * Redis is back: each running answer's log is written again whole (it may have come back empty,
   * or refused appends meanwhile), in one transaction queued before any later append.
   */
  private rewrite(running: Iterable<Generation>): void {
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
  private async read(messageId: string): Promise<Frame[]> {
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

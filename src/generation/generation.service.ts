import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppError } from '../common/app-error';
import { Environment } from '../config/environment';
import { LlmEvent, LlmProvider, LlmRetry } from '../llm/llm.provider';
import { MessagesRepository } from '../storage/messages.repository';
import { ConnectionRegistry } from '../transport/connection-registry';
import { Fanout } from '../transport/fanout';
import { Frame, MessageStatus } from '../transport/frames';
import { Generation, GenerationSpec } from './generation';
import { MetricsService } from '../metrics/metrics.service';
import { RunningJobs } from './running-jobs';
import { StopRegistry } from './stop.registry';
import { retryWrite } from './retry-write';
import { GenerationLog } from './generation-log';
import { SnapshotScheduler } from './snapshot-scheduler';
import { PieceCoalescer, type PieceKind } from './piece-coalescer';
import { Instances } from './instances';

/** Text of a streaming message reaches the database about this often, never per piece. */
export const SNAPSHOT_INTERVAL_MS = 1000;
/** How long an ended generation's log stays in memory for exact `resume`. */
const KEEP_ENDED_MS = 10 * 60_000;
const KEEP_ENDED_MAX = 1000;
/** How often an end the database refused for longer than `retryWrite` waits is tried again. */
const END_RETRY_MS = 2000;

/**
 * Runs generations as jobs, independent of any socket: a viewer that leaves only stops watching.
 * Numbers every piece, keeps the log for `resume`, snapshots text about once a second, and makes
 * sure every generation ends exactly once with its stored message final before `agent_response_end`.
 */
@Injectable()
export class GenerationService implements OnModuleInit, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger(GenerationService.name);
  /** Running generations, by message id and per owner (checked on every `user_message`/`regenerate`). */
  private readonly running: RunningJobs<Generation>;
  /** Ended generations kept for resume, oldest first, each with the time it may be dropped. */
  private readonly ended = new Map<string, { generation: Generation; until: number }>();
  /** Pieces of one turn of the event loop, one frame per generation. */
  private readonly pieces = new PieceCoalescer((generation, kind, text) => this.sendPiece(generation, kind, text));
  private readonly snapshots: SnapshotScheduler;
  /** Shut down: ends still waiting for the database are no longer tried. */
  private closed = false;

  constructor(
    private readonly llm: LlmProvider,
    private readonly messages: MessagesRepository,
    private readonly fanout: Fanout,
    private readonly registry: ConnectionRegistry,
    private readonly env: Environment,
    private readonly stops: StopRegistry,
    private readonly metrics: MetricsService,
    private readonly log: GenerationLog,
    private readonly instances: Instances,
  ) {
    this.running = new RunningJobs(stops);
    this.snapshots = new SnapshotScheduler(
      SNAPSHOT_INTERVAL_MS,
      () => this.snapshotCandidates(),
      (snapshots) => this.messages.snapshotMany(snapshots),
    );
  }

  async onModuleInit(): Promise<void> {
    this.stops.addLookup((id, userId) => this.stopElsewhere(id, userId));
    this.log.keepWhole(() => this.running.values());
    // One process: what the last run left streaming ends now. Many: stops reach the instance running
    // the answer, heartbeats start, and the answers of dead instances are ended.
    await this.instances.start({
      values: () => this.running.values(),
      stop: (id) => this.stop(id),
      abandon: (generation) => this.abandon(generation),
    });
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    this.snapshots.stop();
    await this.instances.shutdown();
  }

  /** The instance id to store on an answer this service will generate (null without Redis). */
  get instanceId(): string | null {
    return this.instances.id;
  }

  get isAccepting(): boolean {
    return this.running.isAccepting;
  }

  get runningCount(): number {
    return this.running.size;
  }

  /** How many generations run for one user (O(1): counted as they start and end). */
  runningFor(ownerId: string): number {
    return this.running.countFor(ownerId);
  }

  /**
   * The live state of a running or recently ended generation. Pending text is sent first, so its
   * text, `seq` and log agree with what viewers have been (or are being) sent.
   */
  find(messageId: string): Generation | undefined {
    const running = this.running.get(messageId);
    if (running) {
      this.pieces.flush(running);
      return running;
    }
    const kept = this.ended.get(messageId);
    return kept && kept.until > Date.now() ? kept.generation : undefined;
  }

  start(spec: GenerationSpec): Generation {
    this.running.assertAccepting();
    const generation = new Generation(spec);
    this.running.add(spec.messageId, spec.ownerId, generation, () => void this.end(generation, 'stopped'));
    if (spec.stored) {
      spec.stored.then(
        () => this.release(generation),
        () => this.abandon(generation),
      );
    }
    this.send(generation, { ...generation.base('agent_response_start'), model: spec.model, ...spec.startFields });
    this.metrics.generationStarted();
    this.snapshots.start();
    // A retry before the first piece is shown to the viewers (not stored, not in the resume log).
    const onRetry = (retry: LlmRetry) => {
      if (generation.ending) return;
      this.send(generation, {
        ...generation.base('agent_retry'),
        attempt: retry.attempt,
        max_attempts: retry.maxAttempts,
        retry_in_ms: retry.retryInMs,
        reason: retry.reason,
      });
    };
    const subscription = this.llm.stream({ ...spec.request, onRetry }).subscribe({
      next: (event) => this.onEvent(generation, event),
      error: (error: unknown) => void this.fail(generation, error),
      complete: () => {
        if (generation.status === 'streaming') void this.end(generation, 'interrupted');
      },
    });
    generation.watch(subscription);
    return generation;
  }

  /** A frame of the generation to its viewers, or held while its row is still being written. */
  private send(generation: Generation, frame: Frame): void {
    if (generation.hold(frame)) return;
    if (!this.instances.hold(generation, frame)) this.fanout.publish(generation.spec.room, frame);
  }

  /**
   * The row is stored: the frames held meanwhile go out, in order, with the text that arrived and
   * waits in the coalescer (sent now, in the same tick, so in the same write as the frames before them).
   */
  private release(generation: Generation): void {
    this.pieces.flush(generation);
    for (const frame of generation.release()) this.fanout.publish(generation.spec.room, frame);
  }

  /** The row could not be stored: upstream is cancelled, nothing is sent or written. */
  private abandon(generation: Generation): void {
    generation.abandon();
    this.running.ending(generation.messageId);
    this.pieces.drop(generation);
    this.untrack(generation);
    this.metrics.generationEnded('error', generation.seq, Date.now() - generation.startedAt, generation.usage);
    generation.settle();
  }

  /** Stops a running generation; false when none runs under that id. */
  stop(messageId: string): boolean {
    const generation = this.running.get(messageId);
    if (!generation) return false;
    void this.end(generation, 'stopped');
    return true;
  }

  /**
   * Sends one connection every frame of the message after `afterSeq`, from the in-memory log, or
   * with Redis from the shared log of whichever instance runs it. False when no log is kept any more
   * (the caller falls back to the stored message).
   */
  async replay(connectionId: string, messageId: string, afterSeq: number): Promise<boolean> {
    const generation = this.find(messageId);
    if (generation) {
      for (const frame of generation.framesAfter(afterSeq)) this.registry.sendReplay(connectionId, frame);
      return true;
    }
    const frames = await this.log.replayable(messageId);
    if (!frames.length) return false;
    for (const frame of frames) {
      if (frame.type === 'agent_response_end' || (frame.seq as number) > afterSeq) this.registry.sendReplay(connectionId, frame);
    }
    return true;
  }

  async beforeApplicationShutdown(): Promise<void> {
    if (this.running.size) this.logger.log(`draining ${this.running.size} running generation(s) for up to ${this.env.DRAIN_TIMEOUT_MS} ms`);
    const left = await this.running.drain(this.env.DRAIN_TIMEOUT_MS);
    await Promise.all(left.map((g) => this.end(g, 'interrupted')));
  }

  private onEvent(generation: Generation, event: LlmEvent): void {
    if (generation.ending) return;
    switch (event.type) {
      case 'reasoning':
      case 'content':
        this.pieces.add(generation, event.type, event.text);
        break;
      case 'usage':
        this.pieces.flush(generation);
        generation.recordUsage(event.usage);
        break;
      case 'finish':
        generation.finishedBy(event.reason);
        void this.end(generation, event.complete ? 'complete' : 'interrupted');
        break;
    }
  }

  private async fail(generation: Generation, error: unknown): Promise<void> {
    if (generation.ending) return;
    // What arrived before the error is sent before it (and counts for `interrupted` below).
    this.pieces.flush(generation);
    const appError = error instanceof AppError ? error : new AppError('internal', 'the model call failed unexpectedly');
    if (!(error instanceof AppError)) this.logger.error(`generation ${generation.messageId}: ${String(error)}`);
    generation.failedWith(appError.code);
    this.metrics.error(appError.code);
    const frame: Frame = {
      ...generation.base('error'),
      code: appError.code,
      message: appError.message,
      ...appError.details,
    };
    this.send(generation, frame);
    await this.end(generation, generation.content ? 'interrupted' : 'error');
  }

  /** Ends a generation once: cancels upstream, stores the final message, then announces the end. */
  private async end(generation: Generation, status: MessageStatus): Promise<void> {
    if (generation.ending) return generation.done;
    // Pending text goes out (and into the stored message) before anything of the end.
    this.pieces.flush(generation);
    generation.beginEnd(status);
    this.running.ending(generation.messageId);
    // The row may still be on its way (the request went out first); an end is written after it.
    if (generation.spec.stored) await generation.spec.stored.catch(() => undefined);
    if (generation.abandoned) return;
    const final = {
      content: generation.content,
      reasoning: generation.reasoning || null,
      status,
      seq: generation.seq,
      usage: generation.usage as Record<string, unknown> | null,
      error_code: generation.errorCode,
      finish_reason: generation.finishReason,
    };
    // A database that is restarting is waited for: the end is announced once it is stored.
    const warn = (error: unknown) => this.logger.warn(`storing the end of message ${generation.messageId} failed, retrying: ${String(error)}`);
    const store = () => this.messages.finish(generation.messageId, final);
    try {
      await retryWrite(store, warn);
    } catch (error) {
      // Announced now (viewers are not kept waiting longer), stored when the database is back: the
      // row must not stay `streaming` under an instance that is alive (no sweep would end it).
      this.logger.error(`could not store the end of message ${generation.messageId} within 30 s, still trying: ${String(error)}`);
      void this.storeEndLater(generation.messageId, store);
    }
    this.metrics.generationEnded(status, generation.seq, Date.now() - generation.startedAt, generation.usage);
    const frame = generation.end();
    this.untrack(generation);
    this.keepEnded(generation);
    this.send(generation, frame);
    this.log.ended(generation.messageId, frame);
    generation.settle();
  }

  /**
   * An end the database refused for longer than `retryWrite` waits: tried again every
   * `END_RETRY_MS` until it is stored or the instance shuts down (then, with Redis, another instance
   * ends the row as `interrupted` with the shared log's text once this one's heartbeat is gone; without
   * Redis, the next start does).
   */
  private async storeEndLater(messageId: string, store: () => Promise<unknown>): Promise<void> {
    while (!this.closed) {
      await sleep(END_RETRY_MS, undefined, { ref: false });
      if (this.closed) return;
      try {
        await store();
        this.logger.log(`the end of message ${messageId} is stored`);
        return;
      } catch {
        // still away; the first failure was logged
      }
    }
  }

  /** Takes an ended generation out of `running` and its owner's count (once, whatever the path). */
  private untrack(generation: Generation): void {
    if (!this.running.remove(generation.messageId, generation)) return;
    if (this.running.size === 0) this.snapshots.stop();
  }

  /** A generation's coalesced text as one numbered frame, to its viewers and its log. */
  private sendPiece(generation: Generation, kind: PieceKind, text: string): void {
    const frame = generation.piece(kind, text);
    this.send(generation, frame);
    this.log.appended(generation.messageId, frame);
    if (generation.seq === 1) this.metrics.firstPieceAfter(Date.now() - generation.startedAt);
  }

  /** The running generations a snapshot may write, each with its pending text sent first. */
  private *snapshotCandidates(): Iterable<Generation> {
    for (const generation of this.running.values()) {
      // A generation whose row is not written yet, or whose end is, has nothing to snapshot.
      if (generation.ending || generation.isHeld) continue;
      this.pieces.flush(generation);
      yield generation;
    }
  }

  private keepEnded(generation: Generation): void {
    const now = Date.now();
    this.ended.delete(generation.messageId);
    this.ended.set(generation.messageId, { generation, until: now + KEEP_ENDED_MS });
    // Oldest first: what has expired, and what is past the cap, leaves as new ones come (no timer each).
    for (const [id, kept] of this.ended) {
      if (kept.until > now && this.ended.size <= KEEP_ENDED_MAX) break;
      this.ended.delete(id);
    }
  }

  /**
   * `stop` of an answer this instance does not run: one streaming elsewhere is stopped through the
   * instance running it (with Redis); an ended one of the user's is left as it is.
   */
  private async stopElsewhere(id: string, userId: string): Promise<boolean> {
    const message = await this.messages.findOwned(id, userId);
    if (message?.role !== 'assistant') return false;
    if (message.status === 'streaming') this.instances.stopElsewhere(id);
    return true;
  }
}

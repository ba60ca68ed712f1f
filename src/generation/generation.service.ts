import { BeforeApplicationShutdown, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { AppError } from '../common/app-error';
import { Environment } from '../config/environment';
import { LlmEvent, LlmProvider } from '../llm/llm.provider';
import { MessagesRepository } from '../storage/messages.repository';
import { ConnectionRegistry } from '../transport/connection-registry';
import { Fanout } from '../transport/fanout';
import { Frame, MessageStatus } from '../transport/frames';
import { Generation, GenerationSpec } from './generation';
import { MetricsService } from '../metrics/metrics.service';
import { StopRegistry } from './stop.registry';

/** Text of a streaming message reaches the database about this often, never per piece. */
export const SNAPSHOT_INTERVAL_MS = 1000;
/** How long an ended generation's log stays in memory for exact `resume`. */
const KEEP_ENDED_MS = 10 * 60_000;
const KEEP_ENDED_MAX = 1000;

/**
 * Runs generations as jobs, independent of any socket: a viewer that leaves only stops watching.
 * Numbers every piece, keeps the log for `resume`, snapshots text about once a second, and makes
 * sure every generation ends exactly once with its stored message final before `agent_response_end`.
 */
@Injectable()
export class GenerationService implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger(GenerationService.name);
  private readonly running = new Map<string, Generation>();
  private readonly ended = new Map<string, Generation>();
  private accepting = true;

  constructor(
    private readonly llm: LlmProvider,
    private readonly messages: MessagesRepository,
    private readonly fanout: Fanout,
    private readonly registry: ConnectionRegistry,
    private readonly env: Environment,
    private readonly stops: StopRegistry,
    private readonly metrics: MetricsService,
  ) {}

  async onModuleInit(): Promise<void> {
    this.stops.addLookup(async (id, userId) => (await this.messages.findOwned(id, userId))?.role === 'assistant');
    const count = await this.messages.interruptAllStreaming();
    if (count > 0) this.logger.warn(`${count} message(s) left streaming by the last run marked interrupted`);
  }

  get isAccepting(): boolean {
    return this.accepting;
  }

  get runningCount(): number {
    return this.running.size;
  }

  /** How many generations run for one user. */
  runningFor(ownerId: string): number {
    let count = 0;
    for (const generation of this.running.values()) if (generation.spec.ownerId === ownerId) count++;
    return count;
  }

  /** The live state of a running or recently ended generation. */
  find(messageId: string): Generation | undefined {
    return this.running.get(messageId) ?? this.ended.get(messageId);
  }

  start(spec: GenerationSpec): Generation {
    if (!this.accepting) throw new AppError('shutting_down', 'the server is shutting down; try again shortly');
    const generation = new Generation(spec);
    this.running.set(spec.messageId, generation);
    generation.unregisterStop = this.stops.register(spec.messageId, spec.ownerId, () => void this.end(generation, 'stopped'));
    this.fanout.publish(spec.room, { ...generation.base('agent_response_start'), model: spec.model, ...spec.startFields });
    this.metrics.generationStarted();
    generation.snapshotTimer = setInterval(() => void this.snapshot(generation), SNAPSHOT_INTERVAL_MS);
    generation.snapshotTimer.unref();
    generation.subscription = this.llm.stream(spec.request).subscribe({
      next: (event) => this.onEvent(generation, event),
      error: (error: unknown) => void this.fail(generation, error),
      complete: () => {
        if (generation.status === 'streaming') void this.end(generation, 'interrupted');
      },
    });
    return generation;
  }

  /** Stops a running generation; false when none runs under that id. */
  stop(messageId: string): boolean {
    const generation = this.running.get(messageId);
    if (!generation) return false;
    void this.end(generation, 'stopped');
    return true;
  }

  /**
   * Sends one connection every frame of the message after `afterSeq`, from the in-memory log.
   * False when the log is no longer kept (the caller falls back to the stored message).
   */
  replay(connectionId: string, messageId: string, afterSeq: number): boolean {
    const generation = this.find(messageId);
    if (!generation) return false;
    for (const frame of generation.framesAfter(afterSeq)) this.registry.send(connectionId, frame);
    return true;
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.accepting = false;
    if (this.running.size === 0) return;
    this.logger.log(`draining ${this.running.size} running generation(s) for up to ${this.env.DRAIN_TIMEOUT_MS} ms`);
    const all = Promise.all([...this.running.values()].map((g) => g.done));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((resolve) => (timer = setTimeout(resolve, this.env.DRAIN_TIMEOUT_MS)))]);
    clearTimeout(timer);
    await Promise.all([...this.running.values()].map((g) => this.end(g, 'interrupted')));
  }

  private onEvent(generation: Generation, event: LlmEvent): void {
    if (generation.ending) return;
    switch (event.type) {
      case 'reasoning':
      case 'content':
        this.fanout.publish(generation.spec.room, generation.piece(event.type, event.text));
        if (generation.seq === 1) this.metrics.firstPieceAfter(Date.now() - generation.startedAt);
        break;
      case 'usage':
        generation.usage = event.usage;
        break;
      case 'finish':
        void this.end(generation, event.complete ? 'complete' : 'interrupted');
        break;
    }
  }

  private async fail(generation: Generation, error: unknown): Promise<void> {
    if (generation.ending) return;
    const appError =
      error instanceof AppError ? error : new AppError('internal', 'the model call failed unexpectedly');
    if (!(error instanceof AppError)) this.logger.error(`generation ${generation.messageId}: ${String(error)}`);
    generation.errorCode = appError.code;
    this.metrics.error(appError.code);
    const frame: Frame = {
      ...generation.base('error'),
      code: appError.code,
      message: appError.message,
      ...appError.details,
    };
    this.fanout.publish(generation.spec.room, frame);
    await this.end(generation, generation.content ? 'interrupted' : 'error');
  }

  /** Ends a generation once: cancels upstream, stores the final message, then announces the end. */
  private async end(generation: Generation, status: MessageStatus): Promise<void> {
    if (generation.ending) return generation.done;
    generation.ending = true;
    generation.status = status;
    clearInterval(generation.snapshotTimer);
    generation.subscription?.unsubscribe();
    generation.unregisterStop?.();
    try {
      await this.messages.finish(generation.messageId, {
        content: generation.content,
        reasoning: generation.reasoning || null,
        status,
        seq: generation.seq,
        usage: generation.usage as Record<string, unknown> | null,
        error_code: generation.errorCode,
      });
    } catch (error) {
      this.logger.error(`could not store the end of message ${generation.messageId}: ${String(error)}`);
    }
    this.metrics.generationEnded(status, generation.seq, Date.now() - generation.startedAt, generation.usage);
    const frame = generation.endFrame();
    generation.log.push(frame);
    this.running.delete(generation.messageId);
    this.keepEnded(generation);
    this.fanout.publish(generation.spec.room, frame);
    generation.resolveDone();
  }

  private async snapshot(generation: Generation): Promise<void> {
    if (!generation.dirty || generation.ending) return;
    generation.dirty = false;
    try {
      await this.messages.snapshot(generation.messageId, generation.content, generation.reasoning || null, generation.seq);
    } catch (error) {
      this.logger.warn(`snapshot of message ${generation.messageId} failed: ${String(error)}`);
    }
  }

  private keepEnded(generation: Generation): void {
    this.ended.set(generation.messageId, generation);
    if (this.ended.size > KEEP_ENDED_MAX) {
      const oldest = this.ended.keys().next().value as string;
      this.ended.delete(oldest);
    }
    setTimeout(() => {
      if (this.ended.get(generation.messageId) === generation) this.ended.delete(generation.messageId);
    }, KEEP_ENDED_MS).unref();
  }
}

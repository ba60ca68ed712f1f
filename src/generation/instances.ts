import { Injectable, Logger } from '@nestjs/common';
import { Environment } from '../config/environment';
import { RedisService } from '../redis/redis.service';
import { MessagesRepository } from '../storage/messages.repository';
import { Fanout } from '../transport/fanout';
import { type Frame } from '../transport/frames';
import { DeadInstanceSweeper } from './dead-instance-sweeper';
import { type Generation } from './generation';
import { GenerationLog } from './generation-log';
import { InstanceLiveness } from './instance-liveness';
import { StallGuard } from './stall-guard';

/** What the instances may do to the answers this one runs (handed over by `GenerationService` at start). */
export interface RunningAnswers {
  /** The answers this instance runs. */
  values(): Iterable<Generation>;
  /** Stops one this instance runs (a `stop` that reached another instance); false when none runs here. */
  stop(messageId: string): boolean;
  /** Drops one another instance ended meanwhile: upstream cancelled, nothing more sent or written. */
  abandon(generation: Generation): void;
}

/**
 * The other instances serving the same database, as answers see them: whose an answer is, a `stop`
 * for an answer running elsewhere, the answers of an instance that died, and frames held while this
 * one may have been taken for dead. `LocalInstances` is one process (there are no others);
 * `RedisInstances` coordinates many through Redis. `GenerationModule` picks one as it picks the
 * `GenerationLog`, so `GenerationService` never asks which.
 */
export abstract class Instances {
  /** The instance id stored on an answer this instance generates (null for one process). */
  abstract get id(): string | null;
  /** Called once when the app starts, after which `answers` may be stopped or abandoned from here. */
  abstract start(answers: RunningAnswers): Promise<void>;
  /** Called once when the app shuts down. */
  abstract shutdown(): Promise<void>;
  /** True (and the frame kept, published later in order) while this instance must not send. On the hot path. */
  abstract hold(generation: Generation, frame: Frame): boolean;
  /** A `stop` of the user's answer that is streaming but not run here: the instance running it ends it. */
  abstract stopElsewhere(messageId: string): void;
}

/**
 * One process: whatever the database holds as streaming at start was left by the last run (it is
 * marked interrupted); there is no other instance to stop an answer on, and frames are never held.
 */
@Injectable()
export class LocalInstances extends Instances {
  private readonly logger = new Logger('GenerationService');

  constructor(private readonly messages: MessagesRepository) {
    super();
  }

  get id(): null {
    return null;
  }

  async start(): Promise<void> {
    const count = await this.messages.interruptAllStreaming();
    if (count > 0) this.logger.warn(`${count} message(s) left streaming by the last run marked interrupted`);
  }

  async shutdown(): Promise<void> {}

  hold(): boolean {
    return false;
  }

  stopElsewhere(): void {}
}

/**
 * Many instances over Redis: a stop may arrive at any of them (a stop channel reaches the one running
 * the answer); each says it is alive (`InstanceLiveness`), and any of them ends the answers of one
 * that stopped saying so (`DeadInstanceSweeper`); one that was frozen past its heartbeat holds its
 * frames until it knows which answers are still its own (`StallGuard`).
 */
@Injectable()
export class RedisInstances extends Instances {
  private readonly logger = new Logger('GenerationService');
  private readonly liveness: InstanceLiveness;
  private readonly sweeper: DeadInstanceSweeper;
  private readonly stall: StallGuard;
  private heartbeat?: NodeJS.Timeout;
  private answers?: RunningAnswers;

  constructor(
    private readonly redis: RedisService,
    private readonly env: Environment,
    private readonly messages: MessagesRepository,
    log: GenerationLog,
    fanout: Fanout,
  ) {
    super();
    this.liveness = new InstanceLiveness(redis, env.INSTANCE_HEARTBEAT_MS);
    const publish = (generation: Generation, frame: Frame) => fanout.publish(generation.spec.room, frame);
    this.stall = new StallGuard(this.liveness.keyLifetimeMs, () => this.recheckOwnAnswers(), publish);
    this.sweeper = new DeadInstanceSweeper(redis.instanceId, messages, this.liveness, log, fanout);
  }

  get id(): string {
    return this.redis.instanceId;
  }

  async start(answers: RunningAnswers): Promise<void> {
    this.answers = answers;
    await this.redis.subscribe(this.redis.key('stop'), (id) => void answers.stop(id));
    await this.liveness.beat();
    await this.sweeper.sweep();
    // Back after Redis was lost: say we are alive at once (Redis may have come back empty), and give
    // the other instances time to do the same before any of them is taken for dead.
    this.redis.onReconnect(() => {
      this.liveness.reconnected();
      this.liveness.beat().catch((error: Error) => this.logger.warn(`heartbeat: ${error.message}`));
    });
    this.heartbeat = setInterval(() => {
      void this.liveness
        .beat()
        .then(() => {
          this.stall.beaten();
          return this.sweeper.sweep();
        })
        .catch((error: Error) => this.logger.warn(`heartbeat: ${error.message}`));
    }, this.env.INSTANCE_HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  async shutdown(): Promise<void> {
    clearInterval(this.heartbeat);
    await this.liveness.forget().catch(() => undefined);
  }

  hold(generation: Generation, frame: Frame): boolean {
    return this.stall.hold(generation, frame);
  }

  stopElsewhere(messageId: string): void {
    this.redis.publish(this.redis.key('stop'), messageId);
  }

  /**
   * After a stall: an answer another instance ended meanwhile is dropped without another frame. One
   * that began its own end is not: its row is no longer `streaming` because it stored its end (a turn
   * that finished while this check read the rows lost its end frame that way). Were it swept too, its
   * end reaches no viewer after the sweep's (each instance drops an end after an end).
   */
  private async recheckOwnAnswers(): Promise<void> {
    await this.liveness.beat();
    if (!this.answers) return;
    for (const generation of [...this.answers.values()]) {
      if (generation.ending) continue;
      const row = await this.messages.findById(generation.messageId);
      if (row && row.status !== 'streaming' && !generation.ending) this.answers.abandon(generation);
    }
  }
}

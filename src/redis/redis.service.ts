import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import { Environment } from '../config/environment';
import { redactUrl } from '../common/redact-url';

type Handler = (message: string) => void;

/**
 * The Redis connections of one instance, when `REDIS_URL` is set: one for commands (auto-pipelined,
 * so a write per piece costs no round trip of its own) and one for subscriptions. Every key and
 * channel carries `REDIS_PREFIX`, so several deployments (or test runs) can share one Redis.
 */
@Injectable()
export class RedisService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(RedisService.name);
  /** This process among the instances sharing the database and Redis. */
  readonly instanceId = randomUUID();
  readonly enabled: boolean;
  private commands?: Redis;
  private subscriber?: Redis;
  private readonly handlers = new Map<string, Handler>();
  private readonly reconnectListeners: Array<() => void> = [];
  /** Per-piece commands failed since the connection was last ready (told once, not per piece). */
  private failing = false;

  constructor(private readonly env: Environment) {
    this.enabled = Boolean(env.REDIS_URL);
  }

  async onModuleInit(): Promise<void> {
    if (!this.enabled) return;
    const url = this.env.REDIS_URL!;
    const options = { lazyConnect: true, connectTimeout: 5000, maxRetriesPerRequest: 3, enableAutoPipelining: true };
    this.commands = new Redis(url, options);
    this.subscriber = new Redis(url, { ...options, enableAutoPipelining: false });
    for (const client of [this.commands, this.subscriber]) client.on('error', (error) => this.logger.warn(`Redis: ${error.message}`));
    try {
      await Promise.all([this.commands.connect(), this.subscriber.connect()]);
    } catch (error) {
      this.commands.disconnect();
      this.subscriber.disconnect();
      throw new Error(`cannot reach Redis at ${redactUrl(url)}: ${(error as Error).message}`);
    }
    this.subscriber.on('message', (channel: string, message: string) => this.handlers.get(channel)?.(message));
    // Every later 'ready' is a reconnection: Redis may have come back empty, or refused commands meanwhile.
    this.commands.on('ready', () => {
      if (this.failing) this.logger.warn('Redis is back');
      this.failing = false;
      this.reconnectListeners.forEach((listener) => listener());
    });
  }

  /**
   * Resolves once the subscriber connection is up with its subscriptions in force again (at once
   * when it never went down; after at most 5 s when Redis stays away): a replay read from the log
   * before then would miss the live frames published meanwhile.
   */
  async subscriptionsLive(): Promise<void> {
    const subscriber = this.subscriber!;
    if (subscriber.status === 'ready') return;
    let timer: NodeJS.Timeout | undefined;
    const ready = new Promise<void>((resolve) => subscriber.once('ready', () => resolve()));
    await Promise.race([
      // The PING is answered after the subscriptions ioredis renews on reconnection.
      ready.then(() => subscriber.ping()).catch(() => undefined),
      new Promise((resolve) => (timer = setTimeout(resolve, 5000))),
    ]);
    clearTimeout(timer);
  }

  /**
   * Resolves once every message Redis published to this instance before now has been handed to its
   * handler: a PING on the subscriber connection is answered after whatever Redis queued on it
   * before. A reader of the command connection (a log just read) then knows the live frames that
   * preceded what it read are in too.
   */
  async subscriberBarrier(): Promise<void> {
    await this.subscriber!.ping().catch(() => undefined);
  }

  /** Called each time the command connection is ready again after it was lost. */
  onReconnect(listener: () => void): void {
    this.reconnectListeners.push(listener);
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([this.commands?.quit().catch(() => undefined), this.subscriber?.quit().catch(() => undefined)]);
  }

  /** The command connection; only valid when `enabled`. */
  get client(): Redis {
    if (!this.commands) throw new Error('Redis is not configured');
    return this.commands;
  }

  key(...parts: string[]): string {
    return `${this.env.REDIS_PREFIX}${parts.join(':')}`;
  }

  /** Resolves once Redis has confirmed the subscription, so nothing published after it is missed. */
  async subscribe(channel: string, handler: Handler): Promise<void> {
    this.handlers.set(channel, handler);
    await this.subscriber!.subscribe(channel);
  }

  async unsubscribe(channel: string): Promise<void> {
    this.handlers.delete(channel);
    await this.subscriber!.unsubscribe(channel);
  }

  publish(channel: string, message: string): void {
    void this.client.publish(channel, message).catch((error: Error) => this.pieceFailed('publish', error));
  }

  /** A per-piece command failed: logged once until Redis is ready again, never once per piece. */
  pieceFailed(what: string, error: Error): void {
    if (this.failing) return;
    this.failing = true;
    this.logger.warn(`${what} failed (further failures unlogged until Redis is back): ${error.message}`);
  }

  async ping(): Promise<void> {
    await this.client.ping();
  }
}

import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ConnectionRegistry } from '../transport/connection-registry';

/**
 * Prometheus metrics on a registry of this app's own (several apps may share a process). Nothing here
 * runs per piece: counts are added when a generation ends.
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();
  private readonly pieces = new Counter({ name: 'chat_pieces_total', help: 'Pieces (frames with a seq) relayed to viewers', registers: [this.registry] });
  private readonly tokens = new Counter({ name: 'chat_tokens_total', help: 'Tokens the model reported', labelNames: ['kind'], registers: [this.registry] });
  private readonly generations = new Counter({
    name: 'chat_generations_total',
    help: 'Generations ended, by status',
    labelNames: ['status'],
    registers: [this.registry],
  });
  private readonly errors = new Counter({
    name: 'chat_errors_total',
    help: 'Error frames of generations, by code',
    labelNames: ['code'],
    registers: [this.registry],
  });
  private readonly firstPiece = new Histogram({
    name: 'chat_time_to_first_piece_seconds',
    help: 'From the start of a generation to its first piece (upstream latency plus ours)',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
    registers: [this.registry],
  });
  private readonly turn = new Histogram({
    name: 'chat_turn_seconds',
    help: 'Whole generation time',
    buckets: [0.5, 1, 2, 5, 10, 30, 60, 120, 300],
    registers: [this.registry],
  });
  private running = 0;

  constructor(connections: ConnectionRegistry) {
    new Gauge({
      name: 'chat_open_sockets',
      help: 'Open WebSocket connections',
      registers: [this.registry],
      collect() {
        this.set(connections.size);
      },
    });
    const running = (): number => this.running;
    new Gauge({
      name: 'chat_running_generations',
      help: 'Generations streaming now',
      registers: [this.registry],
      collect() {
        this.set(running());
      },
    });
  }

  generationStarted(): void {
    this.running++;
  }

  firstPieceAfter(ms: number): void {
    this.firstPiece.observe(ms / 1000);
  }

  generationEnded(status: string, pieces: number, ms: number, usage: { prompt_tokens?: number; completion_tokens?: number } | null): void {
    this.running = Math.max(0, this.running - 1);
    this.generations.inc({ status });
    this.pieces.inc(pieces);
    this.turn.observe(ms / 1000);
    if (usage?.prompt_tokens) this.tokens.inc({ kind: 'prompt' }, usage.prompt_tokens);
    if (usage?.completion_tokens) this.tokens.inc({ kind: 'completion' }, usage.completion_tokens);
  }

  error(code: string): void {
    this.errors.inc({ code });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}

/**
 * Shared bits of the benchmark processes: one clock for all of them, percentiles, a tiny
 * request/response protocol over the Node IPC channel, and /proc readers.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * Milliseconds on CLOCK_MONOTONIC. Every process on the machine reads the same clock, so a time
 * stamped by the fake model can be compared with the time a client received it.
 */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export interface Summary {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** A growable Float64 array: millions of samples without boxing. */
export class Samples {
  private data = new Float64Array(1024);
  length = 0;

  push(value: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = value;
  }

  pushAll(values: ArrayLike<number>): void {
    for (let i = 0; i < values.length; i++) this.push(values[i]);
  }

  values(): Float64Array {
    return this.data.subarray(0, this.length);
  }

  summary(): Summary {
    return summarize(this.values());
  }
}

export function summarize(values: ArrayLike<number>): Summary {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  if (n === 0) return { n: 0, p50: NaN, p90: NaN, p99: NaN, max: NaN, mean: NaN };
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i];
  const at = (p: number) => sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))];
  return { n, p50: at(50), p90: at(90), p99: at(99), max: sorted[n - 1], mean: sum / n };
}

// ---- IPC: the orchestrator calls, a child answers ------------------------------------------

interface Request {
  rpc: number;
  cmd: string;
  args?: unknown;
}

interface Reply {
  rpc: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

type Handler = (args: any) => unknown;

/** Child side: answers the orchestrator's calls; exits when the orchestrator goes away. */
export function serve(handlers: Record<string, Handler>): void {
  if (!process.send) throw new Error('this process must be started with an IPC channel');
  process.on('message', (message: Request) => {
    if (!message || typeof message.rpc !== 'number') return;
    const handler = handlers[message.cmd];
    Promise.resolve()
      .then(() => {
        if (!handler) throw new Error(`unknown command ${message.cmd}`);
        return handler(message.args);
      })
      .then(
        (result) => process.send?.({ rpc: message.rpc, ok: true, result } satisfies Reply),
        (error: unknown) =>
          process.send?.({
            rpc: message.rpc,
            ok: false,
            error: error instanceof Error ? (error.stack ?? error.message) : String(error),
          } satisfies Reply),
      );
  });
  process.on('disconnect', () => process.exit(0));
}

/** Orchestrator side of `serve`. */
export class Rpc {
  private next = 1;
  private readonly waiting = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();

  constructor(
    readonly child: ChildProcess,
    readonly name: string,
  ) {
    child.on('message', (reply: Reply) => {
      const waiter = this.waiting.get(reply?.rpc);
      if (!waiter) return;
      this.waiting.delete(reply.rpc);
      if (reply.ok) waiter.resolve(reply.result);
      else waiter.reject(new Error(`${name}: ${reply.error}`));
    });
    child.on('exit', (code, signal) => {
      for (const waiter of this.waiting.values()) waiter.reject(new Error(`${name} exited (${code ?? signal})`));
      this.waiting.clear();
    });
  }

  call<T = any>(cmd: string, args?: unknown, timeoutMs = 120_000): Promise<T> {
    const rpc = this.next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(rpc);
        reject(new Error(`${this.name}: ${cmd} took more than ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(rpc, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ rpc, cmd, args } satisfies Request);
    });
  }
}

// ---- /proc -------------------------------------------------------------------------------

/** CPU time (user + system) of a process in ms, from /proc/PID/stat (10 ms resolution). */
export function procCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    const ticks = Number(fields[11]) + Number(fields[12]);
    return ticks * 10; // CLK_TCK is 100 on Linux
  } catch {
    return NaN;
  }
}

/** Resident set size in bytes, from /proc/PID/status. */
export function procRssBytes(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /VmRSS:\s+(\d+) kB/.exec(status);
    return match ? Number(match[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The content the fake model streams carries `[n|sentAtMs]` markers: piece number and send time. */
export const PIECE_MARK = /\[(\d+)\|(\d+\.\d+)\]/g;

/** How a client asks the fake model for a given answer (the fake reads it from the last user message). */
export function turnPrompt(pieces: number, intervalMs: number): string {
  return `bench pieces=${pieces} interval=${intervalMs}`;
}

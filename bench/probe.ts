/**
 * Preloaded (`node -r probe.js …`) into the process under test — the real server or the bare
 * relay — so its own figures are read from inside: CPU (process.cpuUsage), memory after a full GC
 * (needs --expose-gc), event-loop delay, and with BENCH_COUNT_SQL=1 every SQLite statement run by
 * verb (to prove there is no database write per piece). Touches nothing of the app itself.
 */
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { serve } from './lib';

const eld = monitorEventLoopDelay({ resolution: 2 });
eld.enable();

const sql: Record<string, number> = { select: 0, insert: 0, update: 0, delete: 0, other: 0 };
/** Wall time spent inside SQLite statements (better-sqlite3 is synchronous: the event loop waits). */
let sqlNs = 0n;

const detailFile = process.env.BENCH_SQL_DETAIL;
const detail = new Map<string, { n: number; ns: bigint }>();
if (detailFile) {
  setInterval(() => {
    const rows = [...detail].map(([k, d]) => ({ sql: k, n: d.n, ms: Number(d.ns) / 1e6 })).sort((a, b) => b.ms - a.ms);
    writeFileSync(detailFile, JSON.stringify(rows, null, 1));
  }, 2000).unref();
}

function countSql(): void {
  const load = createRequire(join(process.cwd(), 'package.json'));
  const Database = load('better-sqlite3');
  const db = new Database(':memory:');
  const proto = Object.getPrototypeOf(db.prepare('select 1'));
  db.close();
  for (const method of ['run', 'all', 'get', 'iterate']) {
    const original = proto[method];
    if (typeof original !== 'function') continue;
    // Named so a CPU profile shows SQLite's own time (native, inside this call) as `sqliteStatement`.
    proto[method] = function sqliteStatement(this: { source?: string }, ...args: unknown[]) {
      const verb = /^\s*(\w+)/.exec(this.source ?? '')?.[1]?.toLowerCase() ?? 'other';
      sql[verb in sql ? verb : 'other'] += 1;
      const started = process.hrtime.bigint();
      try {
        return original.apply(this, args);
      } finally {
        const ns = process.hrtime.bigint() - started;
        sqlNs += ns;
        if (detailFile) {
          const key = (this.source ?? '').slice(0, 90);
          const d = detail.get(key) ?? { n: 0, ns: 0n };
          d.n += 1;
          d.ns += ns;
          detail.set(key, d);
        }
      }
    };
  }
}
if (process.env.BENCH_COUNT_SQL === '1') countSql();

/**
 * The per-user cap on answers streaming at once (src/auth/rate-limits.ts, MAX_RUNNING_PER_USER = 3,
 * not a setting) would refuse all but 3 of the bench's concurrent turns under AUTH_MODE=none (one
 * user). With BENCH_LIFT_RUNNING_CAP=1 its check becomes a no-op; nothing else of the app changes.
 */
let runningCapLifted: boolean | string = false;
function liftRunningCap(): void {
  try {
    const load = createRequire(join(process.cwd(), 'package.json'));
    const mod = load('./dist/auth/rate-limits.js');
    if (typeof mod?.RateLimits?.prototype?.checkRunning !== 'function') {
      runningCapLifted = 'no RateLimits.checkRunning in dist/auth/rate-limits.js';
      return;
    }
    mod.RateLimits.prototype.checkRunning = function checkRunningLiftedByBench(): void {};
    runningCapLifted = true;
  } catch (error) {
    runningCapLifted = `not lifted: ${(error as Error).message.split('\n')[0]}`;
  }
}
if (process.env.BENCH_LIFT_RUNNING_CAP === '1') liftRunningCap();

function fullGc(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return;
  gc();
  gc();
}

serve({
  stats: () => ({
    cpuUs: (({ user, system }) => user + system)(process.cpuUsage()),
    cpuSystemUs: process.cpuUsage().system,
    runningCapLifted,
    mem: process.memoryUsage(),
    sql: { ...sql, ms: Number(sqlNs) / 1e6 },
    eld: { p50: eld.percentile(50) / 1e6, p99: eld.percentile(99) / 1e6, max: eld.max / 1e6 },
  }),
  resetEld: () => eld.reset(),
  /** Memory after a full collection (twice, so weak/finalized objects go too). */
  gc: async () => {
    fullGc();
    await new Promise((resolve) => setTimeout(resolve, 50));
    fullGc();
    return process.memoryUsage();
  },
  /** process.exit, so `--cpu-prof` writes its profile (a signal would skip it). */
  exit: () => {
    setTimeout(() => process.exit(0), 20);
    return true;
  },
});

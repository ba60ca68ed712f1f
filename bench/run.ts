/**
 * `npm run bench [-- --quick]`: builds the server, then in one run measures the real server
 * (`node dist/main.js`) and a bare `ws` relay (the floor) under the same loads, each in its own
 * process, with the fake model and the load clients in processes of their own:
 *
 *   page      GET /chat/:uuid of a chat with 500 messages (server only)
 *   idle      10,000 idle sockets: RSS and heap per socket
 *   ttfp1     time to first piece, 1 client, turns one after another
 *   burst     500 clients send at the same instant: first piece and whole turn
 *   streams   1,000 concurrent streams of 50 pieces/s: added gap, whole turn, CPU per 1,000 pieces
 *   profile   the server again under the streams load with `node --cpu-prof`, top self time
 *
 * Writes bench/results.md (bench/out/results-quick.md with --quick) and bench/out/results.json.
 * Options: --quick, --no-build, --no-profile, --only=page,idle,ttfp1,burst,streams,sweep,profile,
 * --idle=N, --streams=N, --pieces=N, --rounds=N, --sweep=100,300, --head (measure the last commit), --root=PATH (measure
 * another checkout), --compare=PATH (also measure another checkout's built server in the same run),
 * --profile-load=streams|burst|seq, --profile-warmup=N, --report-only (rewrite the Markdown from bench/out/results.json).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { nowMs, procCpuMs, procRssBytes, Rpc, sleep, summarize, type Summary } from './lib';
import { PrivatePostgres, PrivateRedis } from './private-servers';
import { analyzeProfile, type ProfileReport } from './profile';
import { clusterCpuDelta, clusterCpuMs, type Nginx, parseRedisInfo, type RedisCounters, redisDelta, startNginx } from './scale-infra';

/** The checkout the bench lives in: results and findings are written here. */
const ROOT = resolve(__dirname, '../../..');
const BUILD = __dirname;
const OUT = join(ROOT, 'bench', 'out');
const requireFromHere = createRequire(__filename);

// ---- options -----------------------------------------------------------------------------------

const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const option = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const QUICK = flag('quick');
/** `--scale`: two instances on PostgreSQL + Redis behind nginx, next to the SQLite server and the relay (see `phaseScale`). */
const SCALE = flag('scale');
const ONLY = new Set((option('only') ?? (SCALE ? 'scale' : 'page,idle,ttfp1,burst,streams,sweep,profile')).split(','));
if (flag('no-profile')) ONLY.delete('profile');

const P = QUICK
  ? {
      pageN: 60,
      ttfpTurns: 15,
      rounds: 1,
      streamRounds: 1,
      burstClients: 500,
      burstPieces: 25,
      streams: 1000,
      streamPieces: 50,
      idle: 2000,
      sweep: [] as number[],
      profile: false,
      profilePieces: 0,
    }
  : {
      pageN: 200,
      ttfpTurns: 25,
      rounds: 2,
      streamRounds: 1,
      burstClients: 500,
      burstPieces: 50,
      streams: 1000,
      streamPieces: 100,
      idle: 10000,
      sweep: [100, 300],
      profile: true,
      profilePieces: 60,
    };
if (option('idle')) P.idle = Number(option('idle'));
if (option('streams')) P.streams = Number(option('streams'));
if (option('rounds')) P.rounds = P.streamRounds = Number(option('rounds'));
if (option('pieces')) P.streamPieces = Number(option('pieces'));
if (option('sweep'))
  P.sweep = option('sweep')!
    .split(',')
    .map(Number)
    .filter((n) => n > 0);
if (!P.profile && !option('only')?.includes('profile')) ONLY.delete('profile');
if (!P.sweep.length) ONLY.delete('sweep');
if (!P.profilePieces) P.profilePieces = 60;
const INTERVAL = 20; // 50 pieces/s
/** `--trace`: every server gets trace.ts preloaded; the 1-client phase reports where a turn's time goes. */
const TRACE = flag('trace');
const TRACE_DIR = join(OUT, 'trace');
if (TRACE) {
  rmSync(TRACE_DIR, { recursive: true, force: true });
  mkdirSync(TRACE_DIR, { recursive: true });
  process.env.BENCH_TRACE_DIR = TRACE_DIR;
}
const COMPARE = option('compare') ? resolve(option('compare')!) : undefined;
/**
 * The code under test: this checkout's working tree; `--root=PATH` another checkout (built there);
 * `--head` the last commit, exported with `git archive` into a temp folder and built there — also
 * what happens when the working tree does not build (other people mid-edit).
 */
let SUT = option('root') ? resolve(option('root')!) : process.env.BENCH_ROOT ? resolve(process.env.BENCH_ROOT) : ROOT;
let measuredCode = '';
const cleanups: string[] = [];

function git(args: string[]): string {
  return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
}

function exportHead(): string {
  const dir = mkdtempSync(join(os.tmpdir(), 'chat-bench-head-'));
  cleanups.push(dir);
  execFileSync('bash', ['-c', 'git archive HEAD | tar -x -C "$1"', 'export', dir], { cwd: ROOT, stdio: 'inherit' });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return dir;
}

/** Builds `root` (unless --no-build) and starts its server once; a description of what failed, if anything. */
async function buildAndSmokeTest(root: string): Promise<string | undefined> {
  if (!flag('no-build')) {
    log(`building the server in ${root} (tsc -p tsconfig.build.json)…`);
    const error = build(root);
    if (error) return `does not build (${error})`;
  }
  const dir = mkdtempSync(join(os.tmpdir(), 'chat-bench-smoke-'));
  let target: Target | undefined;
  try {
    target = await startServer('smoke', 'http://127.0.0.1:9', `sqlite:${join(dir, 'smoke.db')}`, [], {}, root);
    return undefined;
  } catch (error) {
    const text = (error as Error).message;
    const nest = /(\w+Exception[^|]*)/.exec(text)?.[1];
    return `does not start (${(nest ?? text).replace(/\x1b\[[0-9;]*m/g, '').slice(0, 300)})`;
  } finally {
    if (target) await stopProc(target.proc);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** tsc -p tsconfig.build.json in `root`; the first error line on failure. */
function build(root: string): string | undefined {
  try {
    execFileSync(process.execPath, [require.resolve('typescript/bin/tsc', { paths: [ROOT] }), '-p', join(root, 'tsconfig.build.json')], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return undefined;
  } catch (error) {
    const out = String((error as { stdout?: string }).stdout ?? '') + String((error as { stderr?: string }).stderr ?? '');
    return out.split('\n').find((l) => l.trim()) ?? 'tsc failed';
  }
}
const WATCHDOG_MS = QUICK ? 4 * 60_000 : 9 * 60_000;

// ---- processes -----------------------------------------------------------------------------

interface Proc {
  name: string;
  child: ChildProcess;
  rpc: Rpc;
  lines: number;
  tail: string[];
  waitLine(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
}

const procs: Proc[] = [];

/** Starts `node ARGS` with the soft fd limit raised to the hard one, an IPC channel, and piped output. */
function startNode(name: string, nodeArgs: string[], env: NodeJS.ProcessEnv = process.env, cwd = SUT): Proc {
  const child = spawn('bash', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', name, process.execPath, ...nodeArgs], {
    cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const watchers: Array<(line: string) => void> = [];
  const proc: Proc = {
    name,
    child,
    rpc: new Rpc(child, name),
    lines: 0,
    tail: [],
    waitLine: (pattern, timeoutMs = 60_000) =>
      new Promise((resolveLine, reject) => {
        const last = () => proc.tail.slice(-8).join(' | ');
        const problem = () => proc.tail.find((l) => /Exception|Error:/.test(l)) ?? '';
        const timer = setTimeout(
          () => reject(new Error(`${name}: no line matching ${pattern} within ${timeoutMs} ms; ${problem()} last: ${last()}`)),
          timeoutMs,
        );
        const onExit = (code: number | null) => reject(new Error(`${name} exited (${code}) before ${pattern}; ${problem()} last: ${last()}`));
        child.once('exit', onExit);
        watchers.push((line) => {
          const match = pattern.exec(line);
          if (!match) return;
          clearTimeout(timer);
          child.off('exit', onExit);
          resolveLine(match);
        });
      }),
  };
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => {
      proc.lines++;
      proc.tail.push(line.slice(0, 300));
      if (proc.tail.length > 40) proc.tail.shift();
      for (const watch of watchers) watch(line);
    });
  }
  // A target that dies mid-run says why (its last lines), instead of a closed IPC channel alone.
  child.once('exit', (code, signal) => {
    if (code && !stopping.has(proc)) log(`  ${name} exited (${code ?? signal}); last lines: ${proc.tail.slice(-12).join(' | ')}`);
  });
  procs.push(proc);
  return proc;
}

/** Processes being stopped on purpose (their exit is not news). */
const stopping = new Set<Proc>();

async function stopProc(proc: Proc | undefined): Promise<void> {
  if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  stopping.add(proc);
  const exited = new Promise<void>((r) => proc.child.once('exit', () => r()));
  proc.child.kill('SIGTERM');
  await Promise.race([exited, sleep(5000)]);
  if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
}

function killAll(): void {
  for (const proc of procs) {
    if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
  }
}

// ---- targets -------------------------------------------------------------------------------

/** 'relay', 'server', or 'compare' (the server of another checkout, `--compare=PATH`). */
type Kind = string;

interface Target {
  kind: Kind;
  proc: Proc;
  wsUrl: string;
  httpUrl: string;
}

interface ProbeStats {
  cpuUs: number;
  cpuSystemUs: number;
  runningCapLifted: boolean | string;
  mem: NodeJS.MemoryUsage;
  sql: Record<string, number>;
  eld: { p50: number; p99: number; max: number };
}

function serverEnv(fakeUrl: string, databaseUrl: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  const ours =
    /^(PORT|HOST|DATABASE_URL|REDIS_URL|DEEPSEEK_|LLM_|AUTH_MODE|SESSION_SECRET|GITHUB_|CONTEXT_TOKENS|WS_|RATE_LIMIT|ALLOWED_ORIGINS|DRAIN_|NODE_ENV|NODE_OPTIONS)/;
  for (const [key, value] of Object.entries(process.env)) if (!ours.test(key)) env[key] = value;
  return {
    ...env,
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: databaseUrl,
    DEEPSEEK_BASE_URL: fakeUrl,
    DEEPSEEK_API_KEY: 'x',
    AUTH_MODE: 'none',
    // Thousands of turns from one (AUTH_MODE=none) user: the per-user limit would refuse them.
    RATE_LIMIT_PER_MINUTE: '0',
    // 10,000 sockets of one user: the per-user socket cap (default 20) is a setting.
    WS_MAX_SOCKETS_PER_USER: '1000000',
    BENCH_COUNT_SQL: '1',
    MAX_RUNNING_PER_USER: '1000000',
    // Every bench turn opens a new chat, and the relay has no titles: a generated title is one more
    // model call per chat (+14-17% CPU per 1,000 pieces at 500 at once). BENCH_TITLES=1 keeps them.
    GENERATED_TITLES: process.env.BENCH_TITLES ? 'true' : 'false',
    ...extra,
  };
}

async function startServer(
  name: string,
  fakeUrl: string,
  databaseUrl: string,
  nodeFlags: string[] = [],
  extraEnv: Record<string, string> = {},
  root = SUT,
  kind: Kind = 'server',
): Promise<Target> {
  // BENCH_PRELOAD=FILE: one more module preloaded into every server (a tracer of one's own).
  const preload = [...(TRACE ? ['-r', join(BUILD, 'trace.js')] : []), ...(process.env.BENCH_PRELOAD ? ['-r', process.env.BENCH_PRELOAD] : [])];
  const env = serverEnv(fakeUrl, databaseUrl, { ...(TRACE ? { BENCH_TRACE_NAME: kind } : {}), ...extraEnv });
  const proc = startNode(name, [...nodeFlags, '--expose-gc', '-r', join(BUILD, 'probe.js'), ...preload, join(root, 'dist', 'main.js')], env, root);
  const [, url] = await proc.waitLine(/listening on (http:\/\/\S+)/);
  return { kind, proc, httpUrl: url, wsUrl: `${url.replace(/^http/, 'ws')}/ws` };
}

async function startRelay(fakeUrl: string): Promise<Target> {
  const trace = TRACE ? ['-r', join(BUILD, 'trace.js')] : [];
  const proc = startNode('relay', ['--expose-gc', '-r', join(BUILD, 'probe.js'), ...trace, join(BUILD, 'relay.js')], {
    ...process.env,
    UPSTREAM: fakeUrl,
    BENCH_TRACE_NAME: 'relay',
  });
  const [, url] = await proc.waitLine(/listening on (ws:\/\/\S+)/);
  return { kind: 'relay', proc, wsUrl: url, httpUrl: url.replace(/^ws/, 'http').replace(/\/ws$/, '') };
}

const stats = (t: Target) => t.proc.rpc.call<ProbeStats>('stats');

// ---- seeding: a chat of 500 messages through the app's own repositories ------------------------

const LOREM =
  'The relay forwards each piece as it arrives, and the page renders Markdown as it streams. ' +
  'Here is a list:\n\n- first point with `inline code`\n- second point, a little longer than the first\n\n' +
  '```ts\nfunction add(a: number, b: number): number {\n  return a + b;\n}\n```\n\n';

async function seedChat(databaseUrl: string, messages: number): Promise<string> {
  // The system under test is another checkout's build, loaded by absolute path.
  const load = (p: string) => requireFromHere(join(SUT, p));
  load('node_modules/reflect-metadata');
  load('node_modules/@nestjs/common').Logger.overrideLogger(['error']);
  const { openDatabase } = load('dist/storage/database.provider.js');
  const { ChatsRepository } = load('dist/storage/chats.repository.js');
  const { MessagesRepository } = load('dist/storage/messages.repository.js');
  const { GroupCommit } = load('dist/storage/group-commit.js');
  const db = await openDatabase(databaseUrl);
  try {
    // Repositories share the database's group commit (a provider in the app; an older build ignores the argument).
    const writes = new GroupCommit(db);
    const chats = new ChatsRepository(db, writes);
    const repo = new MessagesRepository(db, writes);
    const chat = await chats.create({ id: randomUUID(), title: 'Bench: a long chat' });
    for (let i = 0; i < messages / 2; i++) {
      await repo.insert({
        id: randomUUID(),
        chat_id: chat.id,
        role: 'user',
        content: `Question ${i}: how does the relay keep the order of pieces when many streams run at once?`,
        status: 'complete',
      });
      const id = randomUUID();
      await repo.insert({ id, chat_id: chat.id, role: 'assistant', content: '', status: 'streaming', model: 'deepseek-v4-flash' });
      await repo.finish(id, {
        content: `Answer ${i}. ${LOREM.repeat(3)}`,
        reasoning: null,
        status: 'complete',
        seq: 120,
        usage: { prompt_tokens: 100, completion_tokens: 300, total_tokens: 400 },
      });
    }
    // A few more chats for the sidebar.
    for (let i = 0; i < 20; i++) await chats.create({ id: randomUUID(), title: `Other chat ${i}` });
    return chat.id;
  } finally {
    await db.destroy();
  }
}

// ---- phases --------------------------------------------------------------------------------

interface LoadSummary {
  turns: number;
  failed: number;
  errors: Record<string, number>;
  pieces: number;
  frames: number;
  lost: number;
  outOfOrder: number;
  seqGaps: number;
  wallMs: number;
  ttfp: Summary;
  turn: Summary;
  inbound: Summary;
  outbound: Summary;
  latency: Summary;
  gap: Summary;
}

interface RunInfo {
  wallMs: number;
  clients: number;
  clientEldP99: number;
  clientEldMax: number;
}

interface PhaseCost {
  cpuMs: number;
  cpuSystemMs: number;
  wallMs: number;
  sqlWrites: number;
  sqlReads: number;
  /** Wall time the target spent inside SQLite statements. */
  sqlMs: number;
  logLines: number;
  eldP99: number;
  eldMax: number;
  fakeCpuMs: number;
  loadCpuMs: number;
  clientEldP99: number;
}

/** Messages in the server's database (seeded chat + 2 per turn): some costs grow with it. */
let dbMessages = 0;
const results: Record<string, any> = { mode: QUICK ? 'quick' : 'full', params: P, phases: {} };
const log = (text: string) => process.stdout.write(`${text}\n`);
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '–');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '–');

/** Runs `work` against a target and returns what it cost the target (and the fake, and the clients). */
async function measured<T extends RunInfo>(target: Target, fake: Proc, load: Proc, work: () => Promise<T>): Promise<{ info: T; cost: PhaseCost }> {
  await target.proc.rpc.call('resetEld');
  const before = await stats(target);
  const lines = target.proc.lines;
  const fake0 = procCpuMs(fake.child.pid!);
  const load0 = procCpuMs(load.child.pid!);
  const t0 = nowMs();
  const info = await work();
  const wallMs = nowMs() - t0;
  const after = await stats(target);
  const writes = (s: ProbeStats) => s.sql.insert + s.sql.update + s.sql.delete;
  return {
    info,
    cost: {
      cpuMs: (after.cpuUs - before.cpuUs) / 1000,
      cpuSystemMs: (after.cpuSystemUs - before.cpuSystemUs) / 1000,
      wallMs,
      sqlWrites: writes(after) - writes(before),
      sqlReads: after.sql.select - before.sql.select,
      sqlMs: (after.sql.ms ?? 0) - (before.sql.ms ?? 0),
      logLines: target.proc.lines - lines,
      eldP99: after.eld.p99,
      eldMax: after.eld.max,
      fakeCpuMs: procCpuMs(fake.child.pid!) - fake0,
      loadCpuMs: procCpuMs(load.child.pid!) - load0,
      clientEldP99: info.clientEldP99,
    },
  };
}

function addCost(a: PhaseCost | undefined, b: PhaseCost): PhaseCost {
  if (!a) return { ...b };
  return {
    cpuMs: a.cpuMs + b.cpuMs,
    cpuSystemMs: a.cpuSystemMs + b.cpuSystemMs,
    wallMs: a.wallMs + b.wallMs,
    sqlWrites: a.sqlWrites + b.sqlWrites,
    sqlReads: a.sqlReads + b.sqlReads,
    sqlMs: a.sqlMs + b.sqlMs,
    logLines: a.logLines + b.logLines,
    eldP99: Math.max(a.eldP99, b.eldP99),
    eldMax: Math.max(a.eldMax, b.eldMax),
    fakeCpuMs: a.fakeCpuMs + b.fakeCpuMs,
    loadCpuMs: a.loadCpuMs + b.loadCpuMs,
    clientEldP99: Math.max(a.clientEldP99, b.clientEldP99),
  };
}

async function phasePage(server: Target, load: Proc, chatId: string, label = 'page'): Promise<void> {
  const base = `${server.httpUrl}`;
  const full = await load.rpc.call('http', { url: `${base}/chat/${chatId}`, n: P.pageN });
  const partial = await load.rpc.call('http', { url: `${base}/chat/${chatId}`, n: P.pageN, headers: { 'HX-Request': 'true' } });
  const api = await load.rpc.call('http', { url: `${base}/api/chats/${chatId}`, n: P.pageN });
  const health = await load.rpc.call('http', { url: `${base}/health`, n: P.pageN });
  results.phases[label] = { full, partial, api, health };
  log(
    `  ${label}: /chat/:uuid p50 ${f2(full.time.p50)} ms (${full.bytes} B), partial p50 ${f2(partial.time.p50)} ms, /api/chats/:uuid p50 ${f2(api.time.p50)} ms, /health p50 ${f2(health.time.p50)} ms`,
  );
}

async function phaseIdle(targets: Target[], load: Proc): Promise<void> {
  const out: Record<string, any> = {};
  for (const target of targets) {
    const before = await target.proc.rpc.call<NodeJS.MemoryUsage>('gc');
    const rssBefore = procRssBytes(target.proc.child.pid!);
    const connect = await load.rpc.call('connect', { group: 'idle', url: target.wsUrl, n: P.idle, batch: 250 }, 240_000);
    await sleep(1000);
    const after = await target.proc.rpc.call<NodeJS.MemoryUsage>('gc');
    const rssAfter = procRssBytes(target.proc.child.pid!);
    await load.rpc.call('close', { group: 'idle' }, 120_000);
    const n = Math.max(1, connect.opened);
    out[target.kind] = {
      requested: P.idle,
      opened: connect.opened,
      failed: connect.failed,
      firstError: connect.firstError,
      connectMs: connect.ms,
      rssPerSocket: (rssAfter - rssBefore) / n,
      heapPerSocket: (after.heapUsed - before.heapUsed) / n,
      externalPerSocket: (after.external + after.arrayBuffers - before.external - before.arrayBuffers) / n,
      rssBefore,
      rssAfter,
      heapBefore: before.heapUsed,
      heapAfter: after.heapUsed,
    };
    const o = out[target.kind];
    log(
      `  idle ${target.kind}: ${o.opened}/${P.idle} sockets in ${f1(o.connectMs)} ms, RSS ${f2(o.rssPerSocket / 1024)} KiB/socket, heap ${f2(o.heapPerSocket / 1024)} KiB/socket${o.failed ? `, ${o.failed} failed: ${o.firstError}` : ''}`,
    );
    await sleep(1000);
  }
  results.phases.idle = out;
}

async function phaseTtfp1(targets: Target[], load: Proc): Promise<void> {
  for (const t of targets) {
    await load.rpc.call('connect', { group: `one-${t.kind}`, url: t.wsUrl, n: 1 });
    await load.rpc.call('run', { group: `one-${t.kind}`, pool: `warm:${t.kind}`, pieces: 5, interval: INTERVAL, turns: 5, pauseMs: 20 });
  }
  for (let round = 0; round < P.rounds; round++) {
    for (const t of round % 2 ? [...targets].reverse() : targets) {
      await load.rpc.call('run', { group: `one-${t.kind}`, pool: `ttfp1:${t.kind}`, pieces: 5, interval: INTERVAL, turns: P.ttfpTurns, pauseMs: 20 });
    }
  }
  const out: Record<string, LoadSummary> = {};
  for (const t of targets) {
    out[t.kind] = await load.rpc.call('summary', { pool: `ttfp1:${t.kind}` });
    if (t.kind === 'server') dbMessages += 2 * (out[t.kind].turns + 5);
    await load.rpc.call('close', { group: `one-${t.kind}` });
    log(
      `  ttfp1 ${t.kind}: first piece p50 ${f2(out[t.kind].ttfp.p50)} ms p99 ${f2(out[t.kind].ttfp.p99)} ms (to the model p50 ${f2(out[t.kind].inbound.p50)}, back p50 ${f2(out[t.kind].outbound.p50)}), failed ${out[t.kind].failed}`,
    );
  }
  results.phases.ttfp1 = out;
  if (TRACE) results.phases.trace = await readTraces(targets, P.ttfpTurns * P.rounds);
}

/** p50 of each traced step over the last `turns` turns of each server (see trace.ts). */
async function readTraces(targets: Target[], turns: number): Promise<Record<string, Record<string, number>>> {
  await sleep(1500); // trace.ts writes its file every second
  const out: Record<string, Record<string, number>> = {};
  for (const t of targets) {
    const prefix = `${t.kind}-`;
    const files = readdirSync(TRACE_DIR).filter((f) => f.startsWith(prefix));
    const traced =
      files.map((f) => JSON.parse(readFileSync(join(TRACE_DIR, f), 'utf8')) as Record<string, number>[]).sort((a, b) => b.length - a.length)[0] ?? [];
    const steps: Record<string, number[]> = {};
    for (const turn of traced.slice(-turns)) for (const [step, ms] of Object.entries(turn)) if (step !== 'at') (steps[step] ??= []).push(ms);
    out[t.kind] = Object.fromEntries(Object.entries(steps).map(([step, values]) => [step, summarize(values).p50]));
  }
  return out;
}

/** `clients` sockets per target; each round every target gets the same load, in alternating order. */
async function phaseConcurrent(
  label: string,
  targets: Target[],
  fake: Proc,
  load: Proc,
  clients: number,
  pieces: number,
  rampMs: number,
  rounds: number,
): Promise<void> {
  const costs: Record<string, PhaseCost | undefined> = {};
  const perRound: any[] = [];
  for (const t of targets) {
    const c = await load.rpc.call('connect', { group: `${label}-${t.kind}`, url: t.wsUrl, n: clients, batch: 250 }, 120_000);
    if (c.failed) log(`  ${label} ${t.kind}: ${c.failed} connections failed: ${c.firstError}`);
  }
  // One round per target first, measured apart and not in the figures: a target's first load at this
  // size pays its JIT warm-up (500 at once: +11-30% CPU on the first round of a build with more code on
  // the frame path, level from the second). Reported as the cold round; `--no-warmup` leaves it out.
  const cold: Record<string, { cpuMs: number; pieces: number }> = {};
  if (!flag('no-warmup')) {
    for (const t of targets) {
      await sleep(1000);
      const pool = `${label}-cold:${t.kind}`;
      const { cost } = await measured(t, fake, load, () =>
        load.rpc.call<RunInfo>('run', { group: `${label}-${t.kind}`, pool, pieces, interval: INTERVAL, rampMs }, 300_000),
      );
      const summary: LoadSummary = await load.rpc.call('summary', { pool });
      cold[t.kind] = { cpuMs: cost.cpuMs, pieces: summary.pieces };
      if (t.kind === 'server') dbMessages += 2 * summary.turns;
      log(`  ${label} ${t.kind} cold round (not counted): target CPU ${f1(cost.cpuMs)} ms for ${summary.pieces} pieces`);
    }
  }
  const dbMessagesAtStart = dbMessages;
  for (let round = 0; round < rounds; round++) {
    for (const t of round % 2 ? [...targets].reverse() : targets) {
      await sleep(1000);
      const { info, cost } = await measured(t, fake, load, () =>
        load.rpc.call<RunInfo>('run', { group: `${label}-${t.kind}`, pool: `${label}:${t.kind}`, pieces, interval: INTERVAL, rampMs }, 300_000),
      );
      costs[t.kind] = addCost(costs[t.kind], cost);
      perRound.push({ round, kind: t.kind, info, cost });
      log(
        `  ${label} ${t.kind} round ${round + 1}: ${f1(info.wallMs)} ms wall, target CPU ${f1(cost.cpuMs)} ms, event-loop p99 ${f1(cost.eldP99)} ms, clients' loop p99 ${f1(info.clientEldP99)} ms`,
      );
    }
  }
  const out: Record<string, any> = { rounds: perRound, dbMessagesAtStart };
  for (const t of targets) {
    await load.rpc.call('close', { group: `${label}-${t.kind}` }, 60_000);
    const summary: LoadSummary = await load.rpc.call('summary', { pool: `${label}:${t.kind}` });
    const cost = costs[t.kind]!;
    const c = cold[t.kind];
    out[t.kind] = {
      ...summary,
      cost,
      cpuSecPer1000: summary.pieces ? cost.cpuMs / 1000 / (summary.pieces / 1000) : NaN,
      coldCpuSecPer1000: c?.pieces ? c.cpuMs / 1000 / (c.pieces / 1000) : NaN,
    };
    if (t.kind === 'server') dbMessages += 2 * summary.turns;
    log(
      `  ${label} ${t.kind}: first piece p50 ${f1(summary.ttfp.p50)} p99 ${f1(summary.ttfp.p99)} ms; turn p50 ${f1(summary.turn.p50)} p99 ${f1(summary.turn.p99)} ms; ` +
        `added gap p99 ${f1(summary.gap.p99)} ms; latency p99 ${f1(summary.latency.p99)} ms; CPU ${f2(out[t.kind].cpuSecPer1000 * 1000)} ms/1000 pieces; ` +
        `frames ${summary.frames} pieces ${summary.pieces} lost ${summary.lost} failed ${summary.failed}`,
    );
  }
  results.phases[label] = out;
}

// ---- scale out: two instances behind nginx, on PostgreSQL and Redis ---------------------------

/**
 * What one run of `--scale` compares: the bare relay, the single-instance SQLite server, and two
 * instances of the server (PostgreSQL + Redis, behind nginx), also two of `--compare`'s build.
 * Each gets the same clients: half on each of its two entry points (an instance through nginx's
 * pinned location, or the one server), and for a share of the chats a viewer on the other one.
 */
interface ScaleUnit {
  kind: Kind;
  /** Generators' entry points, and each half's viewers' (the other instance). */
  genUrls: [string, string];
  viewUrls?: [string, string];
  instances: Target[];
  nginx?: Nginx;
  /** The REDIS_PREFIX and PostgreSQL schema of a pair. */
  prefix?: string;
}

interface ScaleCost {
  wallMs: number;
  instancesCpuMs: number;
  redisCpuMs: number;
  pgCpuMs: number;
  nginxCpuMs: number;
  fakeCpuMs: number;
  loadCpuMs: number;
  redis?: RedisCounters;
  pgStatements: number;
  pgTransactions: number;
  pgTop: Array<{ query: string; calls: number; ms: number }>;
  logLines: number;
}

const SCALE_P = {
  streams: option('streams') ? P.streams : 500,
  pieces: option('pieces') ? P.streamPieces : 50,
  rounds: option('rounds') ? P.rounds : 2,
  /** Share of the chats with a viewer on the other entry point. */
  viewers: Number(option('viewers') ?? 0.5),
  rampMs: Number(option('ramp') ?? 0),
  resumes: Number(option('resumes') ?? 20),
  /** An unmeasured round per target before the measured ones (`--no-warmup` leaves it out). */
  warmup: !flag('no-warmup'),
};

async function phaseScale(fake: Proc, load: Proc, fakeUrl: string, relay: Target, server: Target): Promise<void> {
  const loadModule = (name: string) => requireFromHere(requireFromHere.resolve(name, { paths: [ROOT] }));
  const RedisClient = loadModule('ioredis');
  const { Pool } = loadModule('pg');
  // A Redis and a PostgreSQL cluster of the bench's own: their CPU and counters are this load's alone.
  const redis = await PrivateRedis.start();
  const pg = await PrivatePostgres.start(['shared_preload_libraries=pg_stat_statements', 'pg_stat_statements.track_planning=on', 'max_connections=200']);
  const redisCli = new RedisClient(redis.url);
  const pgPool = new Pool({ connectionString: pg.url, max: 1 });
  const units: ScaleUnit[] = [];
  try {
    await pgPool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    log(`  private Redis ${redis.url} (pid ${redis.pid}), PostgreSQL ${pg.url} (postmaster ${pg.pid}; fsync=off)`);
    const pair = async (kind: Kind, root: string): Promise<ScaleUnit> => {
      const prefix = `bench_${kind.replace(/\W/g, '_')}`;
      const env = { REDIS_URL: redis.url, REDIS_PREFIX: `${prefix}:`, TRUST_PROXY: 'loopback' };
      const databaseUrl = `${pg.url}?schema=${prefix}`;
      // --scale-prof=DIR: each instance of the pair writes a CPU profile there when it stops.
      const prof = (name: string) =>
        option('scale-prof') ? ['--cpu-prof', `--cpu-prof-dir=${resolve(option('scale-prof')!)}`, `--cpu-prof-name=${name}.cpuprofile`] : [];
      const a = await startServer(`${kind}-a`, fakeUrl, databaseUrl, prof(`${kind}-a`), env, root, `${kind}-a`);
      const b = await startServer(`${kind}-b`, fakeUrl, databaseUrl, prof(`${kind}-b`), env, root, `${kind}-b`);
      const nginx = await startNginx(ROOT, a.httpUrl, b.httpUrl);
      log(`  ${kind}: instances ${a.httpUrl} (pid ${a.proc.child.pid}), ${b.httpUrl} (pid ${b.proc.child.pid}) behind nginx ${nginx.url}`);
      return {
        kind,
        genUrls: [nginx.pinnedWsUrl('a'), nginx.pinnedWsUrl('b')],
        viewUrls: [nginx.pinnedWsUrl('b'), nginx.pinnedWsUrl('a')],
        instances: [a, b],
        nginx,
        prefix,
      };
    };
    units.push({ kind: 'relay', genUrls: [relay.wsUrl, relay.wsUrl], instances: [relay] });
    units.push({ kind: 'server', genUrls: [server.wsUrl, server.wsUrl], viewUrls: [server.wsUrl, server.wsUrl], instances: [server] });
    units.push(await pair('scale', SUT));
    if (COMPARE) units.push(await pair('compare-scale', COMPARE));

    const n = SCALE_P.streams;
    const half = [Math.ceil(n / 2), Math.floor(n / 2)];
    for (const unit of units) {
      for (const side of [0, 1]) {
        const c = await load.rpc.call('connect', { group: `scale-${unit.kind}-gen${side}`, url: unit.genUrls[side], n: half[side], batch: 100 }, 120_000);
        if (c.failed) log(`  scale ${unit.kind}: ${c.failed} connections failed: ${c.firstError}`);
      }
      // One short turn each: every client has its chat (the measured turns are follow-ups in it).
      await Promise.all(
        [0, 1].map((side) =>
          load.rpc.call(
            'run',
            { group: `scale-${unit.kind}-gen${side}`, pool: `scale-setup:${unit.kind}`, pieces: 1, interval: INTERVAL, rampMs: 500 },
            120_000,
          ),
        ),
      );
      if (!unit.viewUrls) continue;
      for (const side of [0, 1]) {
        const chats: string[] = await load.rpc.call('chatIds', { group: `scale-${unit.kind}-gen${side}` });
        const watched = chats.slice(0, Math.round(chats.length * SCALE_P.viewers));
        await load.rpc.call('connect', { group: `scale-${unit.kind}-view${side}`, url: unit.viewUrls[side], n: watched.length, batch: 100 }, 120_000);
        await load.rpc.call('watch', { group: `scale-${unit.kind}-view${side}`, chats: watched, pool: `scale-view:${unit.kind}` }, 120_000);
      }
    }

    const readCost = async (unit: ScaleUnit) => {
      const probes = await Promise.all(unit.instances.map((t) => stats(t)));
      return {
        t: nowMs(),
        instancesCpuMs: probes.reduce((sum, p) => sum + p.cpuUs / 1000, 0),
        redis: parseRedisInfo(String(await redisCli.info('everything'))),
        redisCpuMs: procCpuMs(redis.pid!),
        pg: clusterCpuMs(pg.pid!).perPid,
        nginxCpuMs: unit.nginx?.cpuMs() ?? 0,
        fake: procCpuMs(fake.child.pid!),
        load: procCpuMs(load.child.pid!),
        lines: unit.instances.reduce((sum, t) => sum + t.proc.lines, 0),
      };
    };
    // One unmeasured round each first: a target's first load at this size pays its JIT warm-up (in one
    // run, 2,732 vs 1,943 ms of the instances' CPU between the first and second measured rounds).
    for (const unit of units) {
      if (!SCALE_P.warmup) break;
      await Promise.all(
        [0, 1].map((side) =>
          load.rpc.call(
            'run',
            {
              group: `scale-${unit.kind}-gen${side}`,
              pool: `scale-warm:${unit.kind}`,
              pieces: SCALE_P.pieces,
              interval: INTERVAL,
              rampMs: SCALE_P.rampMs,
              followUp: true,
            },
            300_000,
          ),
        ),
      );
    }
    const costs: Record<string, ScaleCost[]> = {};
    for (let round = 0; round < SCALE_P.rounds; round++) {
      for (const unit of round % 2 ? [...units].reverse() : units) {
        await sleep(1500);
        await pgPool.query('SELECT pg_stat_statements_reset()');
        const xact0 = await pgPool.query('SELECT sum(xact_commit + xact_rollback)::bigint AS n FROM pg_stat_database');
        const before = await readCost(unit);
        await Promise.all(
          [0, 1].map((side) =>
            load.rpc.call<RunInfo>(
              'run',
              {
                group: `scale-${unit.kind}-gen${side}`,
                pool: `scale:${unit.kind}`,
                pieces: SCALE_P.pieces,
                interval: INTERVAL,
                rampMs: SCALE_P.rampMs,
                followUp: true,
              },
              300_000,
            ),
          ),
        );
        // Viewers get their last frames a moment after the generators (another instance, via Redis).
        await sleep(300);
        const after = await readCost(unit);
        const xact1 = await pgPool.query('SELECT sum(xact_commit + xact_rollback)::bigint AS n FROM pg_stat_database');
        const top = await pgPool.query(
          "SELECT query, calls::int AS calls, (total_exec_time + total_plan_time)::float AS ms FROM pg_stat_statements WHERE query NOT ILIKE '%pg_stat%' AND query NOT ILIKE 'SELECT pg_stat_statements_reset%' ORDER BY calls DESC",
        );
        const redisD = redisDelta(before.redis, after.redis);
        delete redisD.calls.info;
        const cost: ScaleCost = {
          wallMs: after.t - before.t,
          instancesCpuMs: after.instancesCpuMs - before.instancesCpuMs,
          redisCpuMs: unit.prefix ? after.redisCpuMs - before.redisCpuMs : 0,
          pgCpuMs: unit.prefix ? clusterCpuDelta(before.pg, after.pg) : 0,
          nginxCpuMs: after.nginxCpuMs - before.nginxCpuMs,
          fakeCpuMs: after.fake - before.fake,
          loadCpuMs: after.load - before.load,
          redis: unit.prefix ? redisD : undefined,
          // Minus this bench's own two reads of pg_stat_database.
          pgStatements: unit.prefix ? top.rows.reduce((sum: number, r: { calls: number }) => sum + r.calls, 0) : 0,
          pgTransactions: unit.prefix ? Number(xact1.rows[0].n) - Number(xact0.rows[0].n) - 3 : 0,
          pgTop: unit.prefix
            ? top.rows
                .slice(0, 12)
                .map((r: { query: string; calls: number; ms: number }) => ({ query: r.query.replace(/\s+/g, ' ').slice(0, 140), calls: r.calls, ms: r.ms }))
            : [],
          logLines: after.lines - before.lines,
        };
        (costs[unit.kind] ??= []).push(cost);
        log(
          `  scale ${unit.kind} round ${round + 1}: ${f1(cost.wallMs)} ms wall; CPU ms: instances ${f1(cost.instancesCpuMs)}, Redis ${f1(cost.redisCpuMs)}, PostgreSQL ${f1(cost.pgCpuMs)}, nginx ${f1(cost.nginxCpuMs)}`,
        );
      }
    }

    const out: Record<string, any> = { params: SCALE_P };
    for (const unit of units) {
      const gen: LoadSummary = await load.rpc.call('summary', { pool: `scale:${unit.kind}` });
      const view: LoadSummary | undefined = unit.viewUrls ? await load.rpc.call('summary', { pool: `scale-view:${unit.kind}` }) : undefined;
      const sum = (pick: (c: ScaleCost) => number) => costs[unit.kind].reduce((total, c) => total + pick(c), 0);
      const redisCalls: Record<string, number> = {};
      for (const c of costs[unit.kind]) for (const [name, calls] of Object.entries(c.redis?.calls ?? {})) redisCalls[name] = (redisCalls[name] ?? 0) + calls;
      const all = sum((c) => c.instancesCpuMs + c.redisCpuMs + c.pgCpuMs);
      out[unit.kind] = {
        gen,
        view,
        costs: costs[unit.kind],
        cpuMsPer1000: (sum((c) => c.instancesCpuMs) / gen.pieces) * 1000,
        allCpuMsPer1000: (all / gen.pieces) * 1000,
        withNginxCpuMsPer1000: ((all + sum((c) => c.nginxCpuMs)) / gen.pieces) * 1000,
        redisCpuMsPer1000: (sum((c) => c.redisCpuMs) / gen.pieces) * 1000,
        pgCpuMsPer1000: (sum((c) => c.pgCpuMs) / gen.pieces) * 1000,
        nginxCpuMsPer1000: (sum((c) => c.nginxCpuMs) / gen.pieces) * 1000,
        redisCallsPerPiece: Object.values(redisCalls).reduce((a, b) => a + b, 0) / gen.pieces,
        redisCalls,
        redisBytesPerPiece: sum((c) => (c.redis ? c.redis.netInputBytes + c.redis.netOutputBytes : 0)) / gen.pieces,
        redisReadsPerFrame: sum((c) => c.redis?.readsProcessed ?? 0) / gen.frames,
        pgStatementsPerTurn: sum((c) => c.pgStatements) / gen.turns,
        pgTransactionsPerTurn: sum((c) => c.pgTransactions) / gen.turns,
        framesPerPiece: gen.frames / gen.pieces,
        logLines: sum((c) => c.logLines),
      };
      const o = out[unit.kind];
      log(
        `  scale ${unit.kind}: turn p50 ${f1(gen.turn.p50)} p99 ${f1(gen.turn.p99)} ms; piece latency p50 ${f1(gen.latency.p50)} p99 ${f1(gen.latency.p99)} ms` +
          (view ? `; viewers' ${f1(view.latency.p50)} / ${f1(view.latency.p99)} ms (${view.pieces} pieces)` : '') +
          `; CPU ms/1000 pieces ${f1(o.cpuMsPer1000)} (all ${f1(o.allCpuMsPer1000)}); failed ${gen.failed} lost ${gen.lost}`,
      );
    }
    for (const unit of units) {
      for (const side of [0, 1]) await load.rpc.call('close', { group: `scale-${unit.kind}-gen${side}` }, 60_000);
      if (unit.viewUrls) for (const side of [0, 1]) await load.rpc.call('close', { group: `scale-${unit.kind}-view${side}` }, 60_000);
    }
    // `resume` from the first piece, on the other instance (or the one server), of an answer still streaming.
    for (const unit of units) {
      if (!unit.viewUrls || !SCALE_P.resumes) continue;
      out[unit.kind].resume = await load.rpc.call(
        'resumeProbe',
        { genUrl: unit.genUrls[0], resumeUrl: unit.viewUrls[0], n: SCALE_P.resumes, pieces: 60, interval: INTERVAL, afterMs: 400 },
        300_000,
      );
      log(`  resume ${unit.kind}: first replayed frame p50 ${f2(out[unit.kind].resume.time.p50)} ms p99 ${f2(out[unit.kind].resume.time.p99)} ms`);
    }
    results.phases.scale = out;
  } finally {
    for (const unit of units) {
      if (!unit.nginx) continue;
      await unit.nginx.stop();
      // `exit` through the probe, so --cpu-prof writes its profile (a signal would skip it).
      for (const t of unit.instances) await t.proc.rpc.call('exit', undefined, 5000).catch(() => undefined);
      await sleep(option('scale-prof') ? 3000 : 200);
      for (const t of unit.instances) await stopProc(t.proc);
    }
    redisCli.disconnect();
    await pgPool.end().catch(() => undefined);
    await redis.close();
    pg.close();
  }
}

function reportScale(): string {
  const sc = results.phases.scale;
  if (!sc) return `# Scale-out bench: no figures\n\n${(results.errors ?? []).join('\n')}`;
  const lines: string[] = [];
  const push = (line = '') => lines.push(line);
  push(`# Scale-out bench (\`npm run bench -- --scale\`)`);
  push();
  push(`Run of ${results.startedAt}, ${results.durationS} s; code: ${results.code ?? 'working tree'}. Machine: ${JSON.stringify(results.machineBefore)}.`);
  push(
    `${sc.params.streams} turns at once (${sc.params.pieces} pieces at 50/s each; start spread ${sc.params.rampMs} ms) per target per round, ${sc.params.rounds} rounds${sc.params.warmup ? ' after an unmeasured one' : ''}, rounds alternate the order; each client's turn is a follow-up in its own chat, ${Math.round(sc.params.viewers * 100)}% of the chats watched by a viewer on the other entry point.`,
  );
  push(
    '*scale*: two instances (`dist/main.js`) on a private PostgreSQL cluster (fsync=off, pg_stat_statements) and a private Redis (no persistence), behind nginx with docs/nginx.conf (one worker); clients reach them through two copies of its `/ws` location pinned to one instance each, generators split half and half, viewers on the other instance. *server*: one instance on SQLite, viewers on it. *relay*: bench/relay.ts, no viewers.',
  );
  push();
  const kinds = ['relay', 'server', 'scale', 'compare-scale'].filter((k) => sc[k]);
  push(`| metric | ${kinds.join(' | ')} | scale ÷ relay | scale ÷ server |`);
  push(`|---|${kinds.map(() => '---|').join('')}---|---|`);
  const row = (name: string, pick: (d: any) => number, digits = 2) => {
    const v = kinds.map((k) => pick(sc[k]));
    const [r, s, x] = [pick(sc.relay), pick(sc.server), pick(sc.scale)];
    const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${f2(a / b)}×` : '–');
    push(`| ${name} | ${v.map((n) => (Number.isFinite(n) ? n.toFixed(digits) : '–')).join(' | ')} | ${ratio(x, r)} | ${ratio(x, s)} |`);
  };
  row('whole turn p50 (ms)', (d) => d.gen.turn.p50, 0);
  row('whole turn p99 (ms)', (d) => d.gen.turn.p99, 0);
  row('first piece p50 (ms)', (d) => d.gen.ttfp.p50, 1);
  row("piece latency p50, generator's socket (ms)", (d) => d.gen.latency.p50, 1);
  row("piece latency p99, generator's socket (ms)", (d) => d.gen.latency.p99, 1);
  row("piece latency p50, viewer's socket (ms; scale: the other instance)", (d) => d.view?.latency.p50 ?? NaN, 1);
  row("piece latency p99, viewer's socket (ms)", (d) => d.view?.latency.p99 ?? NaN, 1);
  row('CPU ms per 1,000 pieces: the instances', (d) => d.cpuMsPer1000, 1);
  row('… + Redis + PostgreSQL (**everything**)', (d) => d.allCpuMsPer1000, 1);
  row('… Redis alone', (d) => d.redisCpuMsPer1000, 1);
  row('… PostgreSQL alone', (d) => d.pgCpuMsPer1000, 1);
  row('… nginx alone (not in everything)', (d) => d.nginxCpuMsPer1000, 1);
  row('Redis commands per piece', (d) => (d.redisCalls ? d.redisCallsPerPiece : NaN), 2);
  row('Redis bytes (in + out) per piece', (d) => (d.redisCalls ? d.redisBytesPerPiece : NaN), 0);
  row('Redis read events per frame (round trips, near enough)', (d) => (d.redisCalls ? d.redisReadsPerFrame : NaN), 3);
  row('frames per piece (generator)', (d) => d.framesPerPiece, 3);
  row('PostgreSQL statements per turn', (d) => (d.redisCalls ? d.pgStatementsPerTurn : NaN), 2);
  row('PostgreSQL transactions per turn', (d) => (d.redisCalls ? d.pgTransactionsPerTurn : NaN), 2);
  row('`resume` from seq 0: first replayed frame p50 (ms; scale: other instance)', (d) => d.resume?.time.p50 ?? NaN, 2);
  row('`resume`: first replayed frame p99 (ms)', (d) => d.resume?.time.p99 ?? NaN, 2);
  row('turns failed / pieces lost', (d) => d.gen.failed + d.gen.lost, 0);
  row('log lines of the instances', (d) => d.logLines, 0);
  push();
  for (const k of kinds.filter((x) => sc[x].redisCalls)) {
    push(
      `**${k}**: Redis commands (all rounds): ${Object.entries(sc[k].redisCalls as Record<string, number>)
        .map(([c, n]) => `${c} ${n}`)
        .join(', ')}.`,
    );
    push(
      `PostgreSQL statements, last round (calls): ${sc[k].costs
        .at(-1)
        .pgTop.map(
          (t: { query: string; calls: number; ms?: number }) =>
            `\`${t.query.slice(0, 70)}\` ${t.calls}${t.ms === undefined ? '' : ` (${f1(t.ms)} ms planning + running)`}`,
        )
        .join('; ')}.`,
    );
    push();
  }
  if (results.errors?.length) {
    push('## Errors');
    for (const e of results.errors) push(`- ${String(e).replace(/\n/g, ' ').slice(0, 500)}`);
  }
  return lines.join('\n');
}

async function phaseProfile(fake: Proc, load: Proc, fakeUrl: string, tmp: string): Promise<void> {
  const dir = join(tmp, 'prof');
  mkdirSync(dir, { recursive: true });
  const server = await startServer('server-prof', fakeUrl, `sqlite:${join(tmp, 'prof.db')}`, [
    '--cpu-prof',
    `--cpu-prof-dir=${dir}`,
    '--cpu-prof-name=server.cpuprofile',
  ]);
  try {
    // --profile-load=burst profiles turn start-up (500 turns at once) instead of streaming;
    // --profile-load=seq one client's turns one after another (what the first piece waits for).
    const burst = option('profile-load') === 'burst';
    const seq = option('profile-load') === 'seq';
    const clients = seq ? 1 : burst ? P.burstClients : P.streams;
    await load.rpc.call('connect', { group: 'prof', url: server.wsUrl, n: clients, batch: 250 }, 120_000);
    const runOf = (pool: string) =>
      seq
        ? { group: 'prof', pool, pieces: 2, interval: INTERVAL, turns: 300, pauseMs: 5 }
        : { group: 'prof', pool, pieces: burst ? 5 : P.profilePieces, interval: INTERVAL, rampMs: burst ? 0 : 1000 };
    // --profile-warmup=N: N unmeasured runs of the same load first, so the window shows warm code
    // (a cold run is mostly JIT compilation and first-call set-up).
    for (let i = 0; i < Number(option('profile-warmup') ?? 0); i++) {
      await load.rpc.call<RunInfo>('run', runOf('profile:warmup'), 300_000);
    }
    await sleep(500);
    const fromUs = nowMs() * 1000;
    const { info, cost } = await measured(server, fake, load, () => load.rpc.call<RunInfo>('run', runOf('profile:server'), 300_000));
    const toUs = nowMs() * 1000;
    await load.rpc.call('close', { group: 'prof' }, 60_000);
    const exited = new Promise<void>((r) => server.proc.child.once('exit', () => r()));
    await server.proc.rpc.call('exit');
    await Promise.race([exited, sleep(30_000)]);
    const file = join(dir, 'server.cpuprofile');
    if (!existsSync(file)) throw new Error(`no profile written (${readdirSync(dir).join(', ') || 'empty'})`);
    mkdirSync(OUT, { recursive: true });
    copyFileSync(file, join(OUT, 'server.cpuprofile'));
    const report: ProfileReport = analyzeProfile(file, 25, { fromUs, toUs });
    const summary: LoadSummary = await load.rpc.call('summary', { pool: 'profile:server' });
    results.phases.profile = { report, info, cost, pieces: summary.pieces, gap: summary.gap };
    log(
      `  profile: ${summary.pieces} pieces, busy ${f1(report.busyMs)} ms sampled; top: ${report.top
        .slice(0, 5)
        .map((t) => `${t.name} ${f1(t.pct)}%`)
        .join(', ')}`,
    );
  } finally {
    await stopProc(server.proc);
  }
}

// ---- report --------------------------------------------------------------------------------

function machine(): Record<string, string> {
  const cpuModel = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model ?? '?';
  const mem = /MemTotal:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1];
  let commit = measuredCode || (SUT === ROOT ? '' : SUT);
  if (!commit) {
    try {
      commit = `working tree at ${git(['rev-parse', '--short', 'HEAD'])}`;
      const dirty = git(['status', '--porcelain', '--', 'src']);
      if (dirty) commit += ` + ${dirty.split('\n').length} uncommitted change(s) in src/`;
    } catch {
      commit = SUT;
    }
  }
  let fdLimit = '?';
  try {
    fdLimit = execFileSync('bash', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim();
  } catch {
    /* ignore */
  }
  return {
    nproc: String(os.availableParallelism?.() ?? os.cpus().length),
    cpu: cpuModel.trim(),
    memory: mem ? `${(Number(mem) / 1024 / 1024).toFixed(1)} GiB` : '?',
    node: process.version,
    kernel: os.release(),
    fdLimit,
    commit,
    loadavg: os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' '),
  };
}

function verdict(ok: boolean | undefined): string {
  return ok === undefined ? 'n/a' : ok ? '**pass**' : '**miss**';
}

function report(): string {
  const ph = results.phases;
  const m: Record<string, string> = results.machine;
  const machineBefore: Record<string, string> = results.machineBefore;
  const errors: string[] = results.errors ?? [];
  const lines: string[] = [];
  const push = (s = '') => lines.push(s);
  push(`# Benchmark results${QUICK ? ' (quick mode)' : ''}`);
  push();
  push(`Generated by \`npm run bench${QUICK ? ' -- --quick' : ''}\` on ${results.startedAt} (${results.durationS} s). Code measured: ${m.commit}.`);
  push();
  push('## Machine');
  push();
  push(`| nproc | CPU | memory | node | kernel | fd limit | load average (start → end) |`);
  push('|---|---|---|---|---|---|---|');
  push(`| ${m.nproc} | ${m.cpu} | ${m.memory} | ${m.node} | ${m.kernel} | ${m.fdLimit} | ${machineBefore.loadavg} → ${m.loadavg} |`);
  push();
  push('Other engineers run tests on this machine at the same time: absolute numbers are noisy; the ratios');
  push('against the bare relay (same run, same load, same fake model, alternating rounds) are the figures to trust.');
  push('Server: `node dist/main.js` (+ `--expose-gc -r bench/out/build/probe.js` to read CPU/heap from inside)');
  push('with PORT=0, DATABASE_URL=sqlite:<tmp>, DEEPSEEK_BASE_URL=<fake>, DEEPSEEK_API_KEY=x, AUTH_MODE=none,');
  push('RATE_LIMIT_PER_MINUTE=0, WS_MAX_SOCKETS_PER_USER=1000000, MAX_RUNNING_PER_USER=1000000. Fake model, bare relay,');
  push('server and load clients are');
  push('four separate processes.');
  push('The per-user cap on answers streaming at once is raised by its setting (one AUTH_MODE=none user runs every turn).');
  push();

  // ---- targets
  const t1 = ph.ttfp1;
  const b = ph.burst;
  const s = ph.streams;
  const idle = ph.idle;
  push('## Targets of issue 9');
  push();
  push('| target | measured | bare relay (floor) | verdict |');
  push('|---|---|---|---|');
  if (t1) {
    const d = t1.server.ttfp.p50 - t1.relay.ttfp.p50;
    push(
      `| first-piece overhead ≤ 1 ms p50 over the relay (1 client) | server ${f2(t1.server.ttfp.p50)} ms p50 → **+${f2(d)} ms** | ${f2(t1.relay.ttfp.p50)} ms | ${verdict(d <= 1)} |`,
    );
  }
  if (b) {
    const d = b.server.ttfp.p50 - b.relay.ttfp.p50;
    push(
      `| first-piece overhead ≤ 1 ms p50 over the relay (${P.burstClients} at once) | server ${f1(b.server.ttfp.p50)} ms p50 → **+${f1(d)} ms** | ${f1(b.relay.ttfp.p50)} ms | ${verdict(d <= 1)} |`,
    );
    const r = b.server.turn.p50 / b.relay.turn.p50;
    push(
      `| whole turn ≤ 1.15× the relay at ${P.burstClients} concurrent (p50) | ${f1(b.server.turn.p50)} ms → **${f2(r)}×** (p99 ${f2(b.server.turn.p99 / b.relay.turn.p99)}×) | ${f1(b.relay.turn.p50)} ms | ${verdict(r <= 1.15)} |`,
    );
  }
  if (s) {
    // When the target falls behind, pieces queue and then arrive back to back: the gap looks fine
    // while every piece is late. So the verdict also asks that pieces are not queued (latency p99).
    const queued = s.server.latency.p99 > 100;
    push(
      `| added gap p99 ≤ 20 ms at ${P.streams} streams of 50 pieces/s | **${f1(s.server.gap.p99)} ms**, piece latency p99 ${f1(s.server.latency.p99)} ms | ` +
        `${f1(s.relay.gap.p99)} ms, latency p99 ${f1(s.relay.latency.p99)} ms | ${verdict(s.server.gap.p99 <= 20 && !queued)}${queued ? ' (saturated: pieces queue)' : ''} |`,
    );
  }
  if (idle) {
    push(
      `| ≤ 8 KiB RSS per idle socket (${idle.server.opened} sockets${idle.server.opened < 10000 ? '; RSS per socket is rough below 10,000' : ''}) | **${f2(idle.server.rssPerSocket / 1024)} KiB** | ${f2(idle.relay.rssPerSocket / 1024)} KiB | ${verdict(idle.server.rssPerSocket <= 8192)} |`,
    );
  }
  if (s) {
    const c = s.server.cost as PhaseCost;
    push(
      `| no database write per piece (${s.server.pieces} pieces in ${s.server.turns} turns) | **${c.sqlWrites} writes**: ${f1(c.sqlWrites / Math.max(1, s.server.turns))} per turn of ${P.streamPieces} pieces (${f2(c.sqlWrites / s.server.pieces)} per piece) | – | ${verdict(c.sqlWrites / s.server.pieces < 0.25)} |`,
    );
    push(`| no log line per piece | **${c.logLines} lines** during ${s.server.pieces} pieces | – | ${verdict(c.logLines < s.server.pieces / 1000)} |`);
  }
  push();

  if (ph.trace) {
    const kinds = Object.keys(ph.trace);
    const byServer = ph.trace.server ?? {};
    const steps = [...new Set(kinds.flatMap((k) => Object.keys(ph.trace[k])))].sort((a, b) => (byServer[a] ?? 1e9) - (byServer[b] ?? 1e9));
    push("## Where a turn's time goes (1 client, `--trace`)");
    push();
    push('ms after ws handed the server the `user_message` frame, p50 per step (bench/trace.ts; its wrappers add a little to each).');
    push();
    push(`| step | ${kinds.join(' | ')} |`);
    push(`|---|${kinds.map(() => '---|').join('')}`);
    for (const step of steps) push(`| ${step} | ${kinds.map((k) => (ph.trace[k][step] === undefined ? '–' : f2(ph.trace[k][step]))).join(' | ')} |`);
    push();
  }

  // ---- all numbers
  push('## Measured (bare relay vs server, same run)');
  push();
  push('| metric | bare relay | server | server ÷ relay |');
  push('|---|---|---|---|');
  const row = (name: string, relay: number, server: number, digits = 2) =>
    push(
      `| ${name} | ${relay.toFixed(digits)} | ${server.toFixed(digits)} | ${relay > 0 && server > 0 && Number.isFinite(server / relay) ? (server / relay).toFixed(2) + '×' : '–'} |`,
    );
  if (t1) {
    row('1 client: first piece p50 (ms)', t1.relay.ttfp.p50, t1.server.ttfp.p50);
    row('1 client: first piece p99 (ms)', t1.relay.ttfp.p99, t1.server.ttfp.p99);
    row('1 client: client → model request p50 (ms)', t1.relay.inbound.p50, t1.server.inbound.p50);
    row('1 client: model → client p50 (ms)', t1.relay.outbound.p50, t1.server.outbound.p50);
  }
  if (b) {
    row(`${P.burstClients} at once: first piece p50 (ms)`, b.relay.ttfp.p50, b.server.ttfp.p50, 1);
    row(`${P.burstClients} at once: first piece p99 (ms)`, b.relay.ttfp.p99, b.server.ttfp.p99, 1);
    row(`${P.burstClients} at once: whole turn p50 (ms, ${P.burstPieces} pieces @ 50/s)`, b.relay.turn.p50, b.server.turn.p50, 1);
    row(`${P.burstClients} at once: whole turn p99 (ms)`, b.relay.turn.p99, b.server.turn.p99, 1);
    row(`${P.burstClients} at once: CPU s per 1,000 pieces`, b.relay.cpuSecPer1000, b.server.cpuSecPer1000, 3);
    row(
      `${P.burstClients} at once: CPU s per 1,000 pieces, cold round (first after start, not counted above)`,
      b.relay.coldCpuSecPer1000,
      b.server.coldCpuSecPer1000,
      3,
    );
  }
  if (s) {
    row(`${P.streams} streams: added gap p50 (ms)`, s.relay.gap.p50, s.server.gap.p50);
    row(`${P.streams} streams: added gap p99 (ms)`, s.relay.gap.p99, s.server.gap.p99);
    row(`${P.streams} streams: piece latency model → client p50 (ms)`, s.relay.latency.p50, s.server.latency.p50);
    row(`${P.streams} streams: piece latency model → client p99 (ms)`, s.relay.latency.p99, s.server.latency.p99);
    row(`${P.streams} streams: first piece p50 (ms)`, s.relay.ttfp.p50, s.server.ttfp.p50, 1);
    row(`${P.streams} streams: whole turn p50 (ms, ${P.streamPieces} pieces @ 50/s)`, s.relay.turn.p50, s.server.turn.p50, 1);
    row(`${P.streams} streams: whole turn p99 (ms)`, s.relay.turn.p99, s.server.turn.p99, 1);
    row(`${P.streams} streams: **CPU s per 1,000 pieces**`, s.relay.cpuSecPer1000, s.server.cpuSecPer1000, 3);
    row(`${P.streams} streams: CPU use of the target (cores)`, s.relay.cost.cpuMs / s.relay.cost.wallMs, s.server.cost.cpuMs / s.server.cost.wallMs);
    row(
      `${P.streams} streams: share of that CPU in the kernel (system)`,
      s.relay.cost.cpuSystemMs / s.relay.cost.cpuMs,
      s.server.cost.cpuSystemMs / s.server.cost.cpuMs,
    );
    row(`${P.streams} streams: event-loop delay p99 of the target (ms)`, s.relay.cost.eldP99, s.server.cost.eldP99, 1);
    row(`${P.streams} streams: frames per piece`, s.relay.frames / s.relay.pieces, s.server.frames / s.server.pieces);
  }
  if (idle) {
    row(`idle sockets: RSS per socket (KiB)`, idle.relay.rssPerSocket / 1024, idle.server.rssPerSocket / 1024);
    row(`idle sockets: JS heap per socket (KiB)`, idle.relay.heapPerSocket / 1024, idle.server.heapPerSocket / 1024);
    row(`idle sockets: time to open them all (ms)`, idle.relay.connectMs, idle.server.connectMs, 0);
  }
  push();
  if (ph.page || ph.pageProduction) {
    push(`### \`/chat/:uuid\` with 500 messages (server only; round trip on a kept-alive loopback connection, sequential)`);
    push();
    push('| request | NODE_ENV unset (as specified) p50 / p99 (ms) | NODE_ENV=production p50 / p99 (ms) | body |');
    push('|---|---|---|---|');
    const cell = (x: any) => (x ? `${f2(x.time.p50)} / ${f2(x.time.p99)}` : '–');
    for (const [key, name] of [
      ['full', 'GET /chat/:uuid (full page)'],
      ['partial', 'GET /chat/:uuid, HX-Request (partial)'],
      ['api', 'GET /api/chats/:uuid (JSON)'],
      ['health', 'GET /health (for scale)'],
    ] as const) {
      const a = ph.page?.[key];
      const p = ph.pageProduction?.[key];
      push(`| ${name} | ${cell(a)} | ${cell(p)} | ${((a ?? p)?.bytes ?? 0).toLocaleString('en')} B |`);
    }
    push();
  }

  // ---- details
  push('## Run details');
  push();
  push(
    '| phase | target | turns | failed | pieces | frames | lost | out of order | seq gaps | target CPU (ms) | fake CPU (ms) | clients CPU (ms) | clients loop p99 (ms) | SQL writes | time in SQLite (ms) | log lines |',
  );
  push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const [label, data] of [['burst', b], ['streams', s], ...P.sweep.map((n) => [`sweep${n}`, ph[`sweep${n}`]] as const)] as const) {
    if (!data) continue;
    for (const kind of ['relay', 'server', 'compare'].filter((k) => data[k])) {
      const d = data[kind];
      const c = d.cost as PhaseCost;
      push(
        `| ${label}${kind === 'server' ? ` (${data.dbMessagesAtStart} msgs in DB)` : ''} | ${kind} | ${d.turns} | ${d.failed}${d.failed ? ` ${JSON.stringify(d.errors)}` : ''} | ${d.pieces} | ${d.frames} | ${d.lost} | ${d.outOfOrder} | ${d.seqGaps} | ${c.cpuMs.toFixed(0)} | ${c.fakeCpuMs.toFixed(0)} | ${c.loadCpuMs.toFixed(0)} | ${f1(c.clientEldP99)} | ${c.sqlWrites} | ${c.sqlMs.toFixed(0)} | ${c.logLines} |`,
      );
    }
  }
  push();
  push('- *first piece*: client sends `user_message` → first `agent_response` arrives; split into *client → model request*');
  push('  (until the fake model stamped the first piece) and *model → client*.');
  push('- *added gap*: for consecutive pieces of one answer, (arrival − previous arrival) − (model send − previous model');
  push('  send). The model sends a piece every 20 ms; this is what the path adds to that spacing (negative when a late');
  push('  piece catches up). *Piece latency*: model send → client arrival, per piece, same clock (CLOCK_MONOTONIC).');
  push('- *CPU per 1,000 pieces*: `process.cpuUsage()` of the target process over the load, divided by pieces delivered.');
  push('- *RSS/heap per socket*: after a forced full GC, (with sockets − before) ÷ sockets.');
  push("- *msgs in DB*: the server's database grows during the run (2 messages per turn); some costs grow with it.");
  push(
    `- Burst: ${P.rounds} round(s) per target; streams: ${P.streamRounds} round(s), starts spread over 1 s; rounds alternate which target goes first` +
      `${flag('no-warmup') ? '' : '; each phase starts with one cold round per target (JIT warm-up), measured apart and reported as such'}.`,
  );
  push();

  if (results.compare) {
    push(`## Comparison: this checkout (server) vs ${results.compare} (compare)`);
    push();
    push('| metric | relay | server | compare | compare ÷ server |');
    push('|---|---|---|---|---|');
    const cmp = (name: string, pick: (d: any) => number, data: any) => {
      if (!data?.compare) return;
      const [r, sv, c] = [pick(data.relay), pick(data.server), pick(data.compare)];
      push(`| ${name} | ${f2(r)} | ${f2(sv)} | ${f2(c)} | ${sv > 0 && c > 0 ? `${f2(c / sv)}×` : '–'} |`);
    };
    cmp('1 client: first piece p50 (ms)', (d) => d.ttfp.p50, t1);
    cmp('1 client: client → model request p50 (ms)', (d) => d.inbound.p50, t1);
    cmp('burst: first piece p50 (ms)', (d) => d.ttfp.p50, b);
    cmp('burst: whole turn p50 (ms)', (d) => d.turn.p50, b);
    cmp('burst: CPU ms per 1,000 pieces', (d) => d.cpuSecPer1000 * 1000, b);
    cmp('burst: CPU ms per 1,000 pieces, cold round (first after start, not counted above)', (d) => d.coldCpuSecPer1000 * 1000, b);
    cmp('streams: added gap p99 (ms)', (d) => d.gap.p99, s);
    cmp('streams: piece latency p99 (ms)', (d) => d.latency.p99, s);
    cmp('streams: whole turn p50 (ms)', (d) => d.turn.p50, s);
    cmp('streams: CPU ms per 1,000 pieces', (d) => d.cpuSecPer1000 * 1000, s);
    cmp('streams: CPU ms per 1,000 pieces, cold round', (d) => d.coldCpuSecPer1000 * 1000, s);
    cmp('streams: frames per piece', (d) => d.frames / d.pieces, s);
    cmp('idle: RSS per socket (KiB)', (d) => d.rssPerSocket / 1024, idle);
    cmp('idle: heap per socket (KiB)', (d) => d.heapPerSocket / 1024, idle);
    push();
  }

  const sweeps = [...P.sweep.map((n) => [n, ph[`sweep${n}`]] as const), [P.streams, s] as const].filter(([, d]) => d);
  if (sweeps.length > 1) {
    push('## How many streams of 50 pieces/s fit (same run)');
    push();
    push(
      '| streams | pieces/s | added gap p99 relay / server (ms) | piece latency p99 relay / server (ms) | first piece p50 relay / server (ms) | CPU ms per 1,000 pieces relay / server | server CPU (cores) |',
    );
    push('|---|---|---|---|---|---|---|');
    for (const [n, d] of sweeps) {
      push(
        `| ${n} | ${(n * 50).toLocaleString('en')} | ${f1(d.relay.gap.p99)} / ${f1(d.server.gap.p99)} | ${f1(d.relay.latency.p99)} / ${f1(d.server.latency.p99)} | ${f1(d.relay.ttfp.p50)} / ${f1(d.server.ttfp.p50)} | ${f1(d.relay.cpuSecPer1000 * 1000)} / ${f1(d.server.cpuSecPer1000 * 1000)} | ${f2(d.server.cost.cpuMs / d.server.cost.wallMs)} |`,
      );
    }
    push();
    push("On 2 cores shared by the fake model, the clients, the target and other people's tests, a stream count whose");
    push('CPU need (pieces/s × CPU per piece) nears the share the target gets saturates it: pieces queue, latency grows');
    push('and the *added gap* collapses (late pieces arrive back to back), so read the gap together with the latency.');
    push();
  }

  const prof = ph.profile;
  if (prof) {
    const r: ProfileReport = prof.report;
    push(`## Profile of the server under ${P.streams} streams (\`node --cpu-prof\`)`);
    push();
    push(`${prof.pieces} pieces (${P.streams} streams × ${P.profilePieces}) in ${f1(prof.cost.wallMs / 1000)} s. Only the samples of the load window count`);
    push(`(start-up and connection set-up left out): ${f1(r.busyMs)} ms busy of ${f1(r.totalMs)} ms sampled.`);
    push('Full profile: `bench/out/server.cpuprofile` (open in Chrome DevTools → Performance, or `node bench/out/build/profile.js`).');
    push();
    push('| # | self % of busy | self ms | function | where |');
    push('|---|---|---|---|---|');
    r.top.forEach((t, i) => push(`| ${i + 1} | ${f1(t.pct)}% | ${t.ms.toFixed(0)} | \`${t.name}\` | ${t.where || t.area} |`));
    push();
    push('The same samples charged to the nearest package or app function on the stack (Node internals and native');
    push('calls such as `writev`, `TextDecoder` or a SQLite statement count for whoever made them):');
    push();
    push('| package / app folder | % of busy | ms | | top functions charged | % of busy | where |');
    push('|---|---|---|---|---|---|---|');
    const owners = r.owners.slice(0, 14);
    const fns = r.ownerFunctions.slice(0, 14);
    for (let i = 0; i < Math.max(owners.length, fns.length); i++) {
      const a = owners[i];
      const t = fns[i];
      push(`| ${a ? `${a.area} | ${f1(a.pct)}% | ${a.ms.toFixed(0)}` : ' | | '} | | ${t ? `\`${t.name}\` | ${f1(t.pct)}% | ${t.where}` : ' | | '} |`);
    }
    push();
  }

  if (errors.length) {
    push('## Errors in this run');
    push();
    for (const e of errors) push(`- ${e.replace(/\n/g, ' ').slice(0, 500)}`);
    push();
  }

  const findings = join(ROOT, 'bench', 'findings.md');
  if (existsSync(findings)) {
    push(readFileSync(findings, 'utf8').trim());
    push();
  }
  return lines.join('\n');
}

// ---- main ----------------------------------------------------------------------------------

/** `--report-only`: writes the Markdown again from bench/out/results.json (e.g. after editing findings.md). */
function reportOnly(): void {
  const file = join(OUT, `results${SCALE ? '-scale' : ''}${QUICK ? '-quick' : ''}.json`);
  Object.assign(results, JSON.parse(readFileSync(file, 'utf8')));
  Object.assign(P, results.params);
  writeReport();
}

function writeReport(): void {
  if (SCALE) {
    const file = join(ROOT, 'bench', QUICK ? 'out/results-scale-quick.md' : 'results-scale.md');
    writeFileSync(file, `${reportScale()}\n`);
    log(`\nwrote ${file.replace(`${ROOT}/`, '')}\n`);
    log(reportScale());
    return;
  }
  const md = report();
  const target = QUICK ? join(OUT, 'results-quick.md') : join(ROOT, 'bench', 'results.md');
  writeFileSync(target, `${md}\n`);
  log(`\nwrote ${target.replace(`${ROOT}/`, '')}\n`);
  const start = md.indexOf('## Targets');
  log(md.slice(start, md.indexOf('## Run details')));
}

async function main(): Promise<void> {
  if (flag('report-only')) return reportOnly();
  const startedAt = new Date();
  results.startedAt = startedAt.toISOString();
  results.machineBefore = machine();
  if (COMPARE) results.compare = COMPARE;
  const watchdog = setTimeout(() => {
    process.stderr.write(`bench: watchdog: still running after ${WATCHDOG_MS / 1000} s, stopping\n`);
    killAll();
    process.exit(3);
  }, WATCHDOG_MS);
  watchdog.unref();

  if (flag('head')) {
    log('exporting HEAD (git archive)…');
    SUT = exportHead();
    measuredCode = `HEAD ${git(['rev-parse', '--short', 'HEAD'])} (exported with git archive)`;
  }
  // The code under test must build and start; when the working tree does not (other people
  // mid-edit: tsc still emits, so dist/ may be a mix), measure the last commit instead and say so.
  const problem = await buildAndSmokeTest(SUT);
  if (problem && SUT === ROOT && !flag('no-head-fallback')) {
    log(`  the working tree ${problem}; measuring HEAD instead`);
    SUT = exportHead();
    const again = await buildAndSmokeTest(SUT);
    if (again) throw new Error(`HEAD ${again} either`);
    measuredCode = `HEAD ${git(['rev-parse', '--short', 'HEAD'])}, exported with git archive, because the working tree ${problem.slice(0, 300)}`;
  } else if (problem) {
    throw new Error(`the server ${problem}`);
  }
  const tmp = mkdtempSync(join(os.tmpdir(), 'chat-bench-'));
  const errors: string[] = [];
  const attempt = async (name: string, work: () => Promise<void>) => {
    if (!ONLY.has(name)) return;
    log(`${name}…`);
    try {
      await work();
    } catch (error) {
      const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
      errors.push(`${name}: ${text}`);
      log(`  ${name} FAILED: ${text}`);
    }
  };

  try {
    const databaseUrl = `sqlite:${join(tmp, 'chat.db')}`;
    let chatId = '';
    if (ONLY.has('page')) {
      chatId = await seedChat(databaseUrl, 500);
      dbMessages = 500;
    }

    const fake = startNode('fake', [join(BUILD, 'fake-model.js')]);
    const fakeUrl = await fake.rpc.call<string>('url');
    const load = startNode('load', [join(BUILD, 'load.js')]);
    await load.rpc.call('ping');
    const relay = await startRelay(fakeUrl);
    const server = await startServer('server', fakeUrl, databaseUrl);
    log(`fake model ${fakeUrl}, relay ${relay.wsUrl}, server ${server.httpUrl} (pid ${server.proc.child.pid})`);
    const targets = [relay, server];
    if (COMPARE && !SCALE) {
      targets.push(await startServer('compare', fakeUrl, `sqlite:${join(tmp, 'compare.db')}`, [], {}, COMPARE, 'compare'));
      log(`compare: the server of ${COMPARE} (pid ${targets[2].proc.child.pid})`);
    }
    results.runningCapLifted = (await stats(server)).runningCapLifted;

    // Idle sockets first: later phases grow the heap, and freed pages the sockets could reuse would
    // hide part of their RSS.
    await attempt('idle', () => phaseIdle(targets, load));
    await attempt('page', async () => {
      await phasePage(server, load, chatId);
      if (QUICK) return;
      // Express caches compiled views only with NODE_ENV=production: the same page, same database.
      const prod = await startServer('server-production', fakeUrl, databaseUrl, [], { NODE_ENV: 'production' });
      try {
        await phasePage(prod, load, chatId, 'pageProduction');
      } finally {
        await stopProc(prod.proc);
      }
    });
    await attempt('scale', () => phaseScale(fake, load, fakeUrl, relay, server));
    await attempt('ttfp1', () => phaseTtfp1(targets, load));
    await attempt('burst', () => phaseConcurrent('burst', targets, fake, load, P.burstClients, P.burstPieces, 0, P.rounds));
    await attempt('sweep', async () => {
      for (const n of P.sweep) await phaseConcurrent(`sweep${n}`, targets, fake, load, n, 50, 500, 1);
    });
    await attempt('streams', () => phaseConcurrent('streams', targets, fake, load, P.streams, P.streamPieces, 1000, P.streamRounds));
    results.fake = await fake.rpc.call('stats');
    for (const t of targets) await stopProc(t.proc);
    await attempt('profile', () => phaseProfile(fake, load, fakeUrl, tmp));
  } finally {
    killAll();
    rmSync(tmp, { recursive: true, force: true });
    for (const dir of cleanups) rmSync(dir, { recursive: true, force: true });
  }

  results.machine = machine();
  results.errors = errors;
  results.durationS = Math.round((Date.now() - startedAt.getTime()) / 1000);
  mkdirSync(OUT, { recursive: true });
  results.code = measuredCode || (SUT === ROOT ? `working tree on ${git(['rev-parse', '--short', 'HEAD'])}` : SUT);
  writeFileSync(join(OUT, `results${SCALE ? '-scale' : ''}${QUICK ? '-quick' : ''}.json`), JSON.stringify(results, null, 2));
  writeReport();
  clearTimeout(watchdog);
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    killAll();
    process.exit(1);
  },
);

/**
 * A Redis and a PostgreSQL of a test's own, on free ports, that the test may stop, restart or
 * pause: fault specs never touch the machine's shared servers (and the scale bench reads their CPU
 * and counters without anyone else's load in them). Each is ended by `close()`, and by a process
 * exit hook should a suite die before its `afterAll`.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const cleanups = new Set<() => void>();
process.once('exit', () => cleanups.forEach((cleanup) => cleanup()));

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves once `port` answers `probe` with a reply starting with `expect` (or just accepts, without a probe). */
async function waitForPort(port: number, probe?: string, expect?: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.setTimeout(1000, () => (socket.destroy(), resolve(false)));
      socket.on('error', () => resolve(false));
      socket.on('connect', () => {
        if (!probe) return (socket.end(), resolve(true));
        socket.write(probe);
      });
      socket.on('data', (data) => (socket.destroy(), resolve(String(data).startsWith(expect ?? ''))));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing answered on port ${port} within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** `redis-server` without persistence: a restart comes back empty, as a lost cache node would. */
export class PrivateRedis {
  private child?: ChildProcess;
  private readonly cleanup = () => this.child?.kill('SIGKILL');

  private constructor(readonly port: number) {
    cleanups.add(this.cleanup);
  }

  static async start(): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort());
    await redis.up();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** The redis-server process (undefined while it is down). */
  get pid(): number | undefined {
    return this.child?.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined;
  }

  async up(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'];
    this.child = spawn('redis-server', args, { stdio: 'ignore' });
    await waitForPort(this.port, 'PING\r\n', '+PONG');
  }

  /** Killed outright (SIGKILL): no goodbye to its clients. */
  async down(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    await exited;
  }

  /** Frozen (SIGSTOP): connections stay open, nothing answers, as across a network pause. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  async close(): Promise<void> {
    await this.down();
    cleanups.delete(this.cleanup);
  }
}

/** A PostgreSQL cluster of its own (initdb in a temporary folder, owned by `postgres` when run as root). */
export class PrivatePostgres {
  private readonly cleanup = () => this.stopSync('immediate');

  private constructor(
    private readonly bin: string,
    private readonly dir: string,
    readonly port: number,
    /** More `-c name=value` settings for the server (e.g. `shared_preload_libraries=pg_stat_statements`). */
    private readonly settings: string[] = [],
  ) {
    cleanups.add(this.cleanup);
  }

  /** Where PostgreSQL's server binaries are, or undefined when none is installed. */
  static binaries(): string | undefined {
    const root = '/usr/lib/postgresql';
    if (!existsSync(root)) return undefined;
    const version = readdirSync(root).sort((a, b) => Number(b) - Number(a))[0];
    const bin = version && join(root, version, 'bin');
    return bin && existsSync(join(bin, 'initdb')) ? bin : undefined;
  }

  static async start(settings: string[] = []): Promise<PrivatePostgres> {
    const bin = PrivatePostgres.binaries();
    if (!bin) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql');
    const dir = mkdtempSync(join(tmpdir(), 'chat-pg-'));
    if (process.getuid?.() === 0) {
      const [uid, gid] = ['-u', '-g'].map((flag) => Number(execFileSync('id', [flag, 'postgres']).toString()));
      chownSync(dir, uid, gid);
    }
    const pg = new PrivatePostgres(bin, dir, await freePort(), settings);
    pg.run('initdb', ['-D', dir, '-A', 'trust', '-U', 'postgres', '--no-sync']);
    await pg.up();
    return pg;
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  async up(): Promise<void> {
    const options = [`-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`, ...this.settings.map((s) => `-c ${s}`)].join(' ');
    this.run('pg_ctl', ['-D', this.dir, '-o', options, '-l', join(this.dir, 'log'), '-w', 'start']);
    await waitForPort(this.port);
  }

  /** The postmaster's pid (its backends are its children), from postmaster.pid; undefined while down. */
  get pid(): number | undefined {
    const file = join(this.dir, 'postmaster.pid');
    if (!existsSync(file)) return undefined;
    return Number(readFileSync(file, 'utf8').split('\n')[0]) || undefined;
  }

  /** `fast`: every session is ended and rolled back, as a restart by an operator does. */
  down(mode: 'fast' | 'immediate' = 'fast'): void {
    this.stopSync(mode);
  }

  close(): void {
    this.stopSync('immediate');
    cleanups.delete(this.cleanup);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private stopSync(mode: 'fast' | 'immediate'): void {
    if (!existsSync(join(this.dir, 'postmaster.pid'))) return;
    this.run('pg_ctl', ['-D', this.dir, '-m', mode, '-w', 'stop']);
  }

  /** initdb refuses root: as root, its tools run as the `postgres` user. */
  private run(tool: string, args: string[]): void {
    const path = join(this.bin, tool);
    if (process.getuid?.() === 0) execFileSync('runuser', ['-u', 'postgres', '--', path, ...args], { stdio: 'ignore' });
    else execFileSync(path, args, { stdio: 'ignore' });
  }
}

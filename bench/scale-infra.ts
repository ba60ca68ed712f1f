/**
 * What `npm run bench -- --scale` runs beside the instances: nginx with the sample config of
 * docs/nginx.conf, and readers of what Redis and PostgreSQL did (CPU from /proc, Redis's INFO
 * counters, PostgreSQL's pg_stat_statements and pg_stat_database).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { procCpuMs, sleep } from './lib';
import { freePort } from './private-servers';

export const NGINX = '/usr/sbin/nginx';

export interface Nginx {
  port: number;
  /** Base URL through the balanced `location /` and `/ws` of the sample. */
  url: string;
  /** `/a/ws` and `/b/ws`: the sample's `/ws` location pinned to one instance (so the bench knows which). */
  pinnedWsUrl(instance: 'a' | 'b'): string;
  /** CPU of the master and its workers. */
  cpuMs(): number;
  stop(): Promise<void>;
}

/**
 * nginx on a free port with docs/nginx.conf as it is, its two upstream servers replaced by the
 * instances, plus two upstreams of one instance each and a copy of its `/ws` location for each
 * (`/a/ws`, `/b/ws`, same proxy settings): the bench puts a viewer on the other instance than its
 * chat's generator, which round robin alone would not tell it.
 */
export async function startNginx(root: string, a: string, b: string): Promise<Nginx> {
  if (!existsSync(NGINX)) throw new Error(`nginx is missing at ${NGINX} (apt-get install -y nginx-light)`);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'chat-bench-nginx-'));
  mkdirSync(join(dir, 'tmp'));
  let sample = readFileSync(join(root, 'docs', 'nginx.conf'), 'utf8');
  const hostA = new URL(a).host;
  const hostB = new URL(b).host;
  sample = sample
    .replace('server 127.0.0.1:3001;', `server ${hostA};`)
    .replace('server 127.0.0.1:3002;', `server ${hostB};`)
    .replace('listen 8080;', `listen 127.0.0.1:${port};`);
  if (!sample.includes(hostB)) throw new Error('docs/nginx.conf no longer names 127.0.0.1:3001 and :3002 as its upstream servers');
  const wsLocation = /\n {4}location \/ws \{[\s\S]*?\n {4}\}\n/.exec(sample)?.[0];
  if (!wsLocation) throw new Error('docs/nginx.conf has no `location /ws { … }` block');
  const pinned = (name: string) =>
    wsLocation.replace('location /ws {', `location /${name}/ws {`).replace('proxy_pass http://chat_instances;', `proxy_pass http://chat_${name}/ws;`);
  sample = sample.replace(wsLocation, `${wsLocation}${pinned('a')}${pinned('b')}`);
  const upstreams = `upstream chat_a {\n    server ${hostA};\n    keepalive 32;\n}\nupstream chat_b {\n    server ${hostB};\n    keepalive 32;\n}\n`;
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((name) => `${name}_temp_path ${dir}/tmp/${name};`).join('\n');
  // Thousands of WebSockets: nginx's default of 512 connections per worker would refuse them.
  const conf = `user root;\ndaemon off;\nworker_processes 1;\nworker_rlimit_nofile 65536;\npid ${dir}/nginx.pid;\nerror_log ${dir}/error.log warn;\nevents { worker_connections 32768; }\nhttp {\naccess_log off;\n${temp}\n${upstreams}${sample}\n}\n`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const child: ChildProcess = spawn(
    'bash',
    ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'nginx', NGINX, '-c', join(dir, 'nginx.conf'), '-p', dir],
    {
      stdio: 'ignore',
    },
  );
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const ok = await fetch(`${url}/health`).then(
      (r) => r.status < 500,
      () => false,
    );
    if (ok) break;
    if (i > 100 || child.exitCode !== null)
      throw new Error(`nginx did not answer: ${existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : ''}`);
    await sleep(100);
  }
  const tree = () => [child.pid!, ...childrenOf(child.pid!)];
  return {
    port,
    url,
    pinnedWsUrl: (instance) => `ws://127.0.0.1:${port}/${instance}/ws`,
    cpuMs: () => tree().reduce((sum, pid) => sum + (procCpuMs(pid) || 0), 0),
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGQUIT');
        await Promise.race([exited, sleep(3000)]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Processes whose parent is `pid` (PostgreSQL's backends, nginx's workers). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * CPU of a PostgreSQL cluster: the postmaster and every process it forked, alive now. A backend that
 * exits takes its CPU with it, so read around a load whose connections stay (a pool's).
 */
export function clusterCpuMs(postmasterPid: number): { total: number; perPid: Map<number, number> } {
  const perPid = new Map<number, number>();
  for (const pid of [postmasterPid, ...childrenOf(postmasterPid)]) perPid.set(pid, procCpuMs(pid) || 0);
  return { total: [...perPid.values()].reduce((a, b) => a + b, 0), perPid };
}

/** CPU spent between two readings of `clusterCpuMs`, counting processes born meanwhile from zero. */
export function clusterCpuDelta(before: Map<number, number>, after: Map<number, number>): number {
  let sum = 0;
  for (const [pid, ms] of after) sum += ms - (before.get(pid) ?? 0);
  return sum;
}

export interface RedisCounters {
  /** Calls per command (INFO commandstats). */
  calls: Record<string, number>;
  netInputBytes: number;
  netOutputBytes: number;
  /** Read events Redis processed (one per batch a client's socket delivered): round trips, near enough. */
  readsProcessed: number;
  cpuMs: number;
}

/** INFO commandstats + stats + cpu, parsed. */
export function parseRedisInfo(text: string): RedisCounters {
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(text)?.[1] ?? NaN);
  const calls: Record<string, number> = {};
  for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[match[1]] = Number(match[2]);
  return {
    calls,
    netInputBytes: field('total_net_input_bytes'),
    netOutputBytes: field('total_net_output_bytes'),
    readsProcessed: field('total_reads_processed'),
    cpuMs: (field('used_cpu_sys') + field('used_cpu_user')) * 1000,
  };
}

export function redisDelta(a: RedisCounters, b: RedisCounters): RedisCounters {
  const calls: Record<string, number> = {};
  for (const [name, n] of Object.entries(b.calls)) {
    const d = n - (a.calls[name] ?? 0);
    if (d > 0) calls[name] = d;
  }
  return {
    calls,
    netInputBytes: b.netInputBytes - a.netInputBytes,
    netOutputBytes: b.netOutputBytes - a.netOutputBytes,
    readsProcessed: b.readsProcessed - a.readsProcessed,
    cpuMs: b.cpuMs - a.cpuMs,
  };
}

/**
 * Reads a V8 `.cpuprofile` (from `node --cpu-prof`) and ranks functions by self time, and code by
 * where it lives (a package of node_modules, the app's dist/, Node internals, GC).
 * Standalone: `node bench/out/build/profile.js FILE.cpuprofile [N]`.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Ranked {
  name: string;
  where: string;
  area: string;
  ms: number;
  /** Share of the busy (non-idle) time. */
  pct: number;
}

export interface ProfileReport {
  totalMs: number;
  idleMs: number;
  busyMs: number;
  top: Ranked[];
  areas: { area: string; ms: number; pct: number }[];
  /**
   * Time charged to the nearest package or app code on the stack: Node internals and native
   * calls (writev, TextDecoder, GC excluded) count for the package or app function that made them.
   */
  owners: { area: string; ms: number; pct: number }[];
  ownerFunctions: Ranked[];
}

function shorten(url: string): string {
  if (!url) return '';
  let u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('/node_modules/');
  if (nm >= 0) return u.slice(nm + 1);
  const dist = u.lastIndexOf('/dist/');
  if (dist >= 0) return u.slice(dist + 1);
  u = u.replace(/^node:/, 'node:');
  return u;
}

function areaOf(name: string, url: string): string {
  if (!url) {
    if (name === '(garbage collector)') return 'GC';
    if (name === '(program)') return 'V8/native (program)';
    if (name === '(idle)') return 'idle';
    return 'native';
  }
  const short = shorten(url);
  if (short.startsWith('node_modules/')) {
    const parts = short.split('/');
    return parts[1].startsWith('@') ? `${parts[1]}/${parts[2]}` : parts[1];
  }
  if (short.startsWith('dist/')) return `app ${short.split('/').slice(1, -1).join('/') || '.'}`;
  if (short.startsWith('node:internal/deps/')) return `${short.split('/')[2]} (bundled in Node)`;
  if (short.startsWith('node:')) {
    const m = /^node:(?:internal\/)?([\w]+)/.exec(short);
    return `node:${m?.[1] ?? 'internal'}`;
  }
  return 'other';
}

/**
 * `window` (µs on CLOCK_MONOTONIC, the clock of the profile's timestamps and of process.hrtime)
 * keeps only the samples taken in it, e.g. the load phase without the start-up.
 */
export function analyzeProfile(file: string, topN = 20, window?: { fromUs: number; toUs: number }): ProfileReport {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  const { samples, timeDeltas } = profile;
  let at = profile.startTime;
  for (let i = 0; i < samples.length; i++) {
    at += timeDeltas[i] ?? 0;
    if (window && (at < window.fromUs || at > window.toUs)) continue;
    // The delta after a sample is the time spent in it.
    const dt = i + 1 < timeDeltas.length ? timeDeltas[i + 1] : 0;
    selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + Math.max(0, dt));
  }
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const ownerCache = new Map<number, ProfileNode | null>();
  const ownerOf = (id: number): ProfileNode | null => {
    if (ownerCache.has(id)) return ownerCache.get(id)!;
    const node = byId.get(id);
    let found: ProfileNode | null = null;
    if (node) {
      const short = shorten(node.callFrame.url);
      if (short.startsWith('node_modules/') || short.startsWith('dist/') || short.startsWith('node:internal/deps/')) found = node;
      else if (parent.has(id)) found = ownerOf(parent.get(id)!);
    }
    ownerCache.set(id, found);
    return found;
  };
  const owners = new Map<string, number>();
  const ownerFns = new Map<string, Ranked>();
  const fns = new Map<string, Ranked>();
  const areas = new Map<string, number>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName || '(anonymous)';
    totalUs += us;
    if (name === '(idle)') {
      idleUs += us;
      continue;
    }
    const where = url ? `${shorten(url)}:${lineNumber + 1}` : '';
    const area = areaOf(name, url);
    const key = `${name}@${where}`;
    const entry = fns.get(key) ?? { name, where, area, ms: 0, pct: 0 };
    entry.ms += us / 1000;
    fns.set(key, entry);
    areas.set(area, (areas.get(area) ?? 0) + us / 1000);
    const special = !url && name.startsWith('(');
    const owner = special ? null : ownerOf(id);
    const ownerArea = owner ? areaOf(owner.callFrame.functionName, owner.callFrame.url) : special ? area : 'node/native (no package on stack)';
    owners.set(ownerArea, (owners.get(ownerArea) ?? 0) + us / 1000);
    if (owner) {
      const oName = owner.callFrame.functionName || '(anonymous)';
      const oWhere = `${shorten(owner.callFrame.url)}:${owner.callFrame.lineNumber + 1}`;
      const oKey = `${oName}@${oWhere}`;
      const o = ownerFns.get(oKey) ?? { name: oName, where: oWhere, area: ownerArea, ms: 0, pct: 0 };
      o.ms += us / 1000;
      ownerFns.set(oKey, o);
    }
  }
  const busyMs = (totalUs - idleUs) / 1000;
  const top = [...fns.values()].sort((a, b) => b.ms - a.ms).slice(0, topN);
  for (const t of top) t.pct = (100 * t.ms) / busyMs;
  const ownerFunctions = [...ownerFns.values()].sort((a, b) => b.ms - a.ms).slice(0, topN);
  for (const t of ownerFunctions) t.pct = (100 * t.ms) / busyMs;
  return {
    owners: [...owners.entries()].map(([area, ms]) => ({ area, ms, pct: (100 * ms) / busyMs })).sort((a, b) => b.ms - a.ms),
    ownerFunctions,
    totalMs: totalUs / 1000,
    idleMs: idleUs / 1000,
    busyMs,
    top,
    areas: [...areas.entries()].map(([area, ms]) => ({ area, ms, pct: (100 * ms) / busyMs })).sort((a, b) => b.ms - a.ms),
  };
}

if (require.main === module) {
  const [file, n] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: profile.js FILE.cpuprofile [N]\n');
    process.exit(2);
  }
  const report = analyzeProfile(file, Number(n ?? 25));
  process.stdout.write(`busy ${report.busyMs.toFixed(0)} ms of ${report.totalMs.toFixed(0)} ms sampled\n\n`);
  for (const t of report.top) {
    process.stdout.write(`${t.pct.toFixed(1).padStart(5)}%  ${t.ms.toFixed(0).padStart(7)} ms  ${t.name}  ${t.where}\n`);
  }
  process.stdout.write('\n');
  for (const a of report.areas.slice(0, 20)) {
    process.stdout.write(`${a.pct.toFixed(1).padStart(5)}%  ${a.ms.toFixed(0).padStart(7)} ms  ${a.area}\n`);
  }
  process.stdout.write('\ncharged to the nearest package/app frame:\n');
  for (const a of report.owners.slice(0, 20)) {
    process.stdout.write(`${a.pct.toFixed(1).padStart(5)}%  ${a.ms.toFixed(0).padStart(7)} ms  ${a.area}\n`);
  }
  process.stdout.write('\n');
  for (const t of report.ownerFunctions) {
    process.stdout.write(`${t.pct.toFixed(1).padStart(5)}%  ${t.ms.toFixed(0).padStart(7)} ms  ${t.name}  ${t.where}\n`);
  }
}

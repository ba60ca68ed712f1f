import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { FakeDeepSeek } from './fakes/deepseek.fake';
import { CALC_FILES, CALC_FIX_DIFF, CALC_ISSUE, FakeGithub } from './fakes/github.fake';
import { tempDatabaseUrl } from './support/databases';
import { ServerProcess } from './support/server-process';
import { answer, solverRequestKind, stream } from './support/solver-model';
import { WsTestClient } from './support/ws-client';

const SPACES = ' '.repeat(100_000);
/**
 * Files built against the repository map: lines that made the old body-cutting pattern backtrack
 * for hours (it took 3.9 s on 1,000 spaces), deep nesting, a huge file of declarations, a file over
 * the size cap. Every one is a source file, so its declarations are read.
 */
const HOSTILE_FILES: Record<string, string> = {
  'src/spaces.js': [`export function f() {${SPACES}} x`, `export function g() {${SPACES.slice(50_000)}}${SPACES.slice(50_000)}x`].join('\n'),
  'src/nested.js': `${'{'.repeat(20_000)}${'}'.repeat(20_000)}\nexport function deep() {\n${'('.repeat(20_000)}${')'.repeat(20_000)}\n`,
  'src/huge.py': Array.from({ length: 10_000 }, (_, i) => `def f${i}(a, b):  # ${i}`).join('\n'),
  'src/long.ts': `export class C${' '.repeat(100_000)}{ x: 1 }\n`,
  'src/too-big.js': `export function big() {}\n${'//'.repeat(400_000)}\n`,
};

const ROOT = join(__dirname, '..');

/**
 * The server built as production runs it (plain JS, the map's worker a .js file), types not checked,
 * in a directory of its own beside views/ and public/: it runs as a process of its own, so only the
 * server's own work can delay its answers.
 */
function buildServer(): string {
  const base = join(ROOT, 'node_modules', '.cache', 'solver-hostile');
  mkdirSync(base, { recursive: true });
  for (const dir of ['views', 'public']) if (!existsSync(join(base, dir))) symlinkSync(join(ROOT, dir), join(base, dir));
  const tsc = require.resolve('typescript/bin/tsc');
  const options = ['--outDir', join(base, 'dist'), '--noCheck', '--declaration', 'false', '--sourceMap', 'false', '--incremental', 'false'];
  execFileSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json'), ...options], { cwd: ROOT });
  return join(base, 'dist', 'main.js');
}

/**
 * Polls `/health` back to back from a thread of its own (this process also runs the fakes, whose
 * work must not count); each answer's time counts from when its poll was due.
 */
const POLLER = `
const http = require('node:http');
const { parentPort, workerData } = require('node:worker_threads');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
let running = true;
let max = 0;
let count = 0;
const once = () => new Promise((resolve, reject) => {
  http.get(workerData.url + '/health', { agent }, (res) => {
    res.resume();
    res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error('health ' + res.statusCode))));
  }).on('error', reject);
});
parentPort.on('message', () => (running = false));
(async () => {
  while (running) {
    const due = performance.now() + 5;
    await new Promise((resolve) => setTimeout(resolve, 5));
    await once();
    max = Math.max(max, performance.now() - due);
    count += 1;
  }
  agent.destroy();
  parentPort.postMessage({ max, count });
})().catch((error) => parentPort.postMessage({ error: String(error) }));
`;

function pollHealth(url: string): { stop(): Promise<{ max: number; count: number }> } {
  const worker = new Worker(POLLER, { eval: true, workerData: { url } });
  const result = new Promise<{ max: number; count: number; error?: string }>((resolve) => worker.once('message', resolve));
  return {
    async stop() {
      worker.postMessage('stop');
      const { max, count, error } = await result;
      await worker.terminate();
      if (error) throw new Error(error);
      return { max, count };
    },
  };
}

describe('Solver on a hostile repository (e2e)', () => {
  let model: FakeDeepSeek;
  let github: FakeGithub;
  let server: ServerProcess;
  let control: ServerProcess;
  let client: WsTestClient;

  beforeAll(async () => {
    model = await FakeDeepSeek.start();
    github = await FakeGithub.start();
    model.setDefault((body) => {
      const kind = solverRequestKind(body);
      if (kind === 'files') return stream('{"files": ["src/math.js", "src/nested.js", "src/spaces.js"]}');
      return stream(answer('Off by one.', CALC_FIX_DIFF));
    });
    github.addRepo({ owner: 'octo', name: 'calc', files: CALC_FILES, issues: [CALC_ISSUE] });
    github.addRepo({
      owner: 'evil',
      name: 'calc',
      files: { ...CALC_FILES, ...HOSTILE_FILES },
      issues: [{ ...CALC_ISSUE, body: `${CALC_ISSUE.body}\n${'average '.repeat(1_000)}${SPACES.slice(90_000)}{${SPACES.slice(90_000)}x` }],
    });
    const script = buildServer();
    const env = {
      AUTH_MODE: 'none',
      DEEPSEEK_BASE_URL: model.baseUrl,
      DEEPSEEK_API_KEY: 'test-key',
      GITHUB_API_URL: github.url,
      RATE_LIMIT_PER_MINUTE: '0',
    };
    server = await ServerProcess.start({ ...env, DATABASE_URL: tempDatabaseUrl() }, script);
    // An identical server that runs nothing: it shares the machine (and its load) with the first.
    control = await ServerProcess.start({ ...env, DATABASE_URL: tempDatabaseUrl() }, script);
    client = await WsTestClient.connect(server.wsUrl);
  }, 120_000);
  afterAll(async () => {
    client?.close();
    await server?.kill('SIGTERM');
    await control?.kill('SIGTERM');
    await model.close();
    await github.close();
  });

  it('maps pathological files off the event loop: /health answers within 100 ms throughout, and the run completes', async () => {
    // The server is a process of its own: the fakes and this test's work do not delay its answers.
    // A first run on a plain repository warms the code paths and starts the map's worker.
    client.send({ type: 'solve', id: 'warm', issue_url: 'https://github.com/octo/calc/issues/7' });
    await client.collect((f) => f.id === 'warm' && (f.type === 'solver_complete' || f.type === 'error'), 60_000);
    const health = pollHealth(server.url);
    const idle = pollHealth(control.url);
    client.send({ type: 'solve', id: 'h1', issue_url: 'https://github.com/evil/calc/issues/7' });
    const frames = await client.collect((f) => f.id === 'h1' && (f.type === 'solver_complete' || f.type === 'error'), 60_000);
    const { max, count } = await health.stop();
    const baseline = await idle.stop();

    const end = frames[frames.length - 1];
    expect(end).toMatchObject({ type: 'solver_complete', status: 'complete', applies: true, files: ['src/math.js'] });
    // The hostile sources were really read for the map (blobs), and the map reached the model.
    const blobReads = github.calls().filter((c) => c.startsWith('GET /repos/evil/calc/git/blobs/')).length;
    expect(blobReads).toBeGreaterThanOrEqual(5);
    const mapPrompt = model.requests.filter((r) => solverRequestKind(r.body) === 'files').at(-1)!.body.messages[1].content as string;
    expect(mapPrompt).toContain('export function deep()');
    expect(mapPrompt).toContain('export function f()');
    expect(mapPrompt).toMatch(/src\/huge\.py \([\d.]+ KB\)\n {2}def f0\(a, b\)/);
    expect(mapPrompt).not.toContain('export function big()');
    expect(count).toBeGreaterThan(2);
    console.log(
      `/health during the run: ${count} polls, slowest ${max.toFixed(1)} ms; idle twin server: ${baseline.count} polls, slowest ${baseline.max.toFixed(1)} ms`,
    );
    // The issue's explicit ask: the server keeps answering within 100 ms while it maps the repository.
    // Other processes share this machine's cores: what an idle twin server gets meanwhile is allowed
    // on top, twice over (the old code blocked for seconds on 1,000 spaces, for hours on these lines).
    expect(max).toBeLessThan(100 + 2 * baseline.max);
  });
});

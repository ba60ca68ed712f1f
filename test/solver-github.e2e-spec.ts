import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FakeDeepSeek } from './fakes/deepseek.fake';
import { CALC_FILES, CALC_FIX_DIFF, CALC_ISSUE, FakeGithub } from './fakes/github.fake';
import { type RunningApp, startApp } from './support/app';
import { answer, solverRequestKind, stream } from './support/solver-model';
import { type AnyFrame, WsTestClient } from './support/ws-client';

const ISSUE_URL = 'https://github.com/octo/calc/issues/7';
const SECONDARY = {
  message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
  documentation_url: 'https://docs.github.com/rest',
};

/** GitHub as it really misbehaves, end to end over /ws: what a run survives and what it reports. */
describe('Solver against GitHub failures (e2e)', () => {
  let model: FakeDeepSeek;
  let github: FakeGithub;
  let server: RunningApp;
  let client: WsTestClient;
  let slowModel = false;

  const settings = (githubUrl: string, extra: Record<string, string> = {}) => ({
    DEEPSEEK_BASE_URL: model.baseUrl,
    DEEPSEEK_API_KEY: 'test-key',
    GITHUB_API_URL: githubUrl,
    GITHUB_RETRY_BASE_MS: '5',
    RATE_LIMIT_PER_MINUTE: '0',
    ...extra,
  });

  beforeAll(async () => {
    model = await FakeDeepSeek.start();
    github = await FakeGithub.start();
    model.setDefault((body) => {
      if (solverRequestKind(body) === 'files') return stream('{"files": ["src/math.js"]}', slowModel ? { delayMs: 300 } : {});
      return stream(answer('Off by one.', CALC_FIX_DIFF));
    });
    server = await startApp(settings(github.url, { SOLVER_MAX_RUNS_PER_USER: '1' }));
  });
  beforeEach(async () => {
    github.addRepo({ owner: 'octo', name: 'calc', files: CALC_FILES, issues: [CALC_ISSUE] });
    github.setRateLimit(Number.POSITIVE_INFINITY);
    github.requests.length = 0;
    slowModel = false;
    client = await WsTestClient.connect(server.wsUrl);
  });
  afterEach(() => client.close());
  afterAll(async () => {
    await server.close();
    await model.close();
    await github.close();
  });

  async function solve(id: string, on = client): Promise<AnyFrame[]> {
    on.send({ type: 'solve', id, issue_url: ISSUE_URL });
    return on.collect((f) => f.id === id && (f.type === 'solver_complete' || f.type === 'error'), 20_000);
  }
  const count = (call: string) => github.calls().filter((c) => c === call).length;

  it('a 429 secondary rate limit with Retry-After: the request waits what GitHub asks and the run completes', async () => {
    github.failNext(/^GET \/repos\/octo\/calc\/issues\/7$/, 429, 1, SECONDARY, { 'retry-after': '1' });
    const end = (await solve('g1')).at(-1)!;
    expect(end).toMatchObject({ type: 'solver_complete', status: 'complete', applies: true });
    expect(count('GET /repos/octo/calc/issues/7')).toBe(2);
  });

  it('5xx answers and a dropped connection, then success: retried with back-off, the run completes', async () => {
    github.failNext(/^GET \/repos\/octo\/calc\/git\/trees\//, 502, 2);
    github.failNext(/^GET \/repos\/octo\/calc\/contents\/src\/math\.js$/, 0, 1);
    const end = (await solve('g2')).at(-1)!;
    expect(end).toMatchObject({ type: 'solver_complete', status: 'complete', applies: true });
    expect(github.calls().filter((c) => c.startsWith('GET /repos/octo/calc/git/trees/'))).toHaveLength(3);
    expect(count('GET /repos/octo/calc/contents/src/math.js')).toBe(2);
  });

  it('5xx that does not end: github_error after the retries, saying so', async () => {
    github.failNext(/^GET \/repos\/octo\/calc$/, 503, 4); // the first try and GITHUB_MAX_RETRIES (3)
    const end = (await solve('g3')).at(-1)!;
    expect(end).toMatchObject({
      type: 'error',
      code: 'github_error',
      github_status: 503,
      message: 'GitHub failed while reading repository octo/calc (503); try again later.',
    });
    expect(count('GET /repos/octo/calc')).toBe(4);
  });

  it('the hourly limit spent: not retried; github_error with the reset time', async () => {
    const reset = Math.floor(Date.now() / 1000) + 40 * 60;
    github.setRateLimit(0, reset);
    const end = (await solve('g4')).at(-1)!;
    const at = new Date(reset * 1000).toISOString();
    expect(end).toMatchObject({ type: 'error', code: 'github_error', github_status: 403, reset_at: at });
    expect(end.message).toBe(
      `GitHub's API rate limit is used up (60 requests an hour without a token); it resets at ${at} (in about 40 minutes). A GITHUB_TOKEN raises the limit to 5,000 an hour.`,
    );
    expect(github.requests.length).toBeLessThanOrEqual(2); // repository and issue ask at once; neither is retried
  });

  it('GitHub unreachable: the message has no internal address or socket error', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const nowhere = await startApp(settings(`http://127.0.0.1:${port}`, { GITHUB_RETRY_BASE_MS: '1' }));
    const other = await WsTestClient.connect(nowhere.wsUrl);
    try {
      const end = (await solve('g5', other)).at(-1)!;
      expect(end).toMatchObject({ type: 'error', code: 'github_error' });
      expect(end.message).toMatch(/^GitHub could not be reached \(reading (repository octo\/calc|issue #7 of octo\/calc)\); try again later\.$/);
      expect(JSON.stringify(end)).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|fetch failed/);
    } finally {
      other.close();
      await nowhere.close();
    }
  });

  it('SOLVER_MAX_RUNS_PER_USER: one run too many is limit_exceeded and starts nothing; after the first ends, a new one starts', async () => {
    slowModel = true;
    client.send({ type: 'solve', id: 'first', issue_url: ISSUE_URL });
    const started = await client.next((f) => f.type === 'solver_started' && f.id === 'first');
    client.send({ type: 'solve', id: 'second', issue_url: ISSUE_URL });
    const refused = await client.next((f) => f.id === 'second');
    expect(refused).toMatchObject({ type: 'error', code: 'limit_exceeded', limit: 'solver_runs', max: 1 });
    expect(refused.message).toMatch(/at most 1 Solver run\(s\) at once/);
    client.send({ type: 'stop', run_id: started.run_id });
    await client.next((f) => f.type === 'solver_complete' && f.run_id === started.run_id);
    slowModel = false;
    const third = (await solve('third')).at(-1);
    expect(third).toMatchObject({ type: 'solver_complete', status: 'complete' });
  });

  it('SOLVER_MAX_RUNS_PER_USER holds for solves sent back to back, before any of them is running', async () => {
    slowModel = true;
    for (const id of ['a', 'b', 'c']) client.send({ type: 'solve', id, issue_url: ISSUE_URL });
    const answers = [];
    for (const id of ['a', 'b', 'c']) answers.push(await client.next((f) => f.id === id && (f.type === 'solver_started' || f.type === 'error')));
    const started = answers.filter((f) => f.type === 'solver_started');
    expect(started).toHaveLength(1);
    expect(answers.filter((f) => f.type === 'error').map((f) => f.code)).toEqual(['limit_exceeded', 'limit_exceeded']);
    client.send({ type: 'stop', run_id: started[0].run_id });
    await client.next((f) => f.type === 'solver_complete' && f.run_id === started[0].run_id);
    slowModel = false;
  });
});

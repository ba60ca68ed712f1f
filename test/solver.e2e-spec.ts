import { applyPatch, parsePatch } from 'diff';
import request from 'supertest';
import { FakeDeepSeek, type Scenario } from './fakes/deepseek.fake';
import {
  CALC_FILES as FILES,
  CALC_FIX_DIFF,
  CALC_ISSUE,
  CALC_MATH as MATH,
  CALC_MATH_FIXED as FIXED,
  FakeGithub,
  gitApply,
  gitAvailable,
} from './fakes/github.fake';
import { type RunningApp, startApp } from './support/app';
import { type AnyFrame, WsTestClient } from './support/ws-client';
import { answer, pieces, solverRequestKind, stream } from './support/solver-model';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISSUE_URL = 'https://github.com/octo/calc/issues/7';

/** A correct fix whose hunk header is off (line 40, wrong counts): it applies only after tolerant placement. */
const SLOPPY_DIFF = CALC_FIX_DIFF.replace('@@ -4,7 +4,7 @@', '@@ -40,6 +40,9 @@');
/** A line to remove that is not in the file (a paraphrased context line alone would be tolerated). */
const BROKEN_DIFF = SLOPPY_DIFF.replace('-  for (let i = 0; i <= values.length; i++) {', '-  for (let i = 0; i <= values.size; i++) {');
const EXACT_DIFF = CALC_FIX_DIFF;

/** The fixed file after applying `patch` strictly (no fuzz), or false. */
function applyStrict(patch: string, source: string): string | false {
  const [file] = parsePatch(patch);
  return applyPatch(source, file, { fuzzFactor: 0 });
}

describe('Solver over /ws (e2e)', () => {
  let model: FakeDeepSeek;
  let github: FakeGithub;
  let server: RunningApp;
  let client: WsTestClient;
  /** What the fake model answers, by request kind. */
  let answers: { files: () => Scenario; solution: () => Scenario; repair: () => Scenario };

  const requestsOf = (kind: string) => model.requests.filter((r) => solverRequestKind(r.body) === kind);

  beforeAll(async () => {
    model = await FakeDeepSeek.start();
    github = await FakeGithub.start({ token: 'ghp_test' });
    model.setDefault((body) => {
      const kind = solverRequestKind(body);
      return kind === 'chat' ? { kind: 'stream', content: ['Hello', ' beside'] } : answers[kind]();
    });
    server = await startApp({
      DEEPSEEK_BASE_URL: model.baseUrl,
      DEEPSEEK_API_KEY: 'test-key',
      GITHUB_API_URL: github.url,
      LLM_RETRY_BASE_MS: '5',
      LLM_MAX_RETRIES: '1',
      RATE_LIMIT_PER_MINUTE: '0',
    });
  });
  beforeEach(async () => {
    github.addRepo({
      owner: 'octo',
      name: 'calc',
      files: FILES,
      issues: [CALC_ISSUE],
    });
    github.setRateLimit(Number.POSITIVE_INFINITY);
    answers = {
      files: () => stream('{"files": ["src/math.js", "src/nope.js"]}'),
      solution: () => stream(answer('The loop reads one element past the end, so the sum is NaN.', SLOPPY_DIFF)),
      repair: () => stream(answer('Fixed the context.', EXACT_DIFF)),
    };
    model.requests.length = 0;
    github.requests.length = 0;
    client = await WsTestClient.connect(server.wsUrl);
  });
  afterEach(() => client.close());
  afterAll(async () => {
    await server.close();
    await model.close();
    await github.close();
  });

  /** Sends `solve` and returns its frames up to the run's last one (`solver_complete` or `error`). */
  async function run(id: string, extra: Record<string, unknown> = {}, timeoutMs = 15_000): Promise<AnyFrame[]> {
    client.send({ type: 'solve', id, issue_url: ISSUE_URL, ...extra });
    return client.collect((f) => f.id === id && (f.type === 'solver_complete' || f.type === 'error'), timeoutMs);
  }

  /** Checks what every run must do: started first, ids, stages in order, progress never falling, one seq. */
  function checkRun(frames: AnyFrame[], id: string, expectedStages: string[]): { runId: string; complete: AnyFrame } {
    const [started] = frames;
    expect(started).toEqual({ type: 'solver_started', id, run_id: expect.stringMatching(UUID), issue_url: ISSUE_URL });
    const runId = started.run_id as string;
    for (const frame of frames) expect(frame).toMatchObject({ id, run_id: runId });

    const progress = frames.filter((f) => f.type === 'solver_progress');
    const stages = progress.map((f) => f.stage).filter((s, i, all) => i === 0 || all[i - 1] !== s);
    expect(stages).toEqual(expectedStages);
    for (let i = 1; i < progress.length; i++) expect(progress[i].progress).toBeGreaterThanOrEqual(progress[i - 1].progress);
    for (const p of progress) {
      expect(p.progress).toBeGreaterThanOrEqual(0);
      expect(p.progress).toBeLessThanOrEqual(100);
      expect(typeof p.message).toBe('string');
    }

    const seqs = frames.filter((f) => f.type === 'solver_reasoning' || f.type === 'solver_solution').map((f) => f.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));

    const complete = frames[frames.length - 1];
    expect(complete.type).toBe('solver_complete');
    const beforeLast = frames[frames.length - 2];
    if (complete.status === 'complete') expect(beforeLast).toMatchObject({ type: 'solver_progress', stage: 'complete', progress: 100 });
    return { runId, complete };
  }

  it('a whole run: frames in order, one seq, progress never falling, a clean patch that applies to the repository', async () => {
    const frames = await run('s1');
    const { runId, complete } = checkRun(frames, 's1', ['issue', 'repomap', 'files', 'solution', 'verify', 'complete']);
    const types = frames.map((f) => f.type);
    expect(types.filter((t) => t === 'solver_reasoning').length).toBe(4); // 2 while choosing files, 2 while solving
    expect(types.indexOf('solver_solution')).toBeGreaterThan(types.lastIndexOf('solver_reasoning'));
    const solution = frames
      .filter((f) => f.type === 'solver_solution')
      .map((f) => f.content)
      .join('');
    expect(solution).toBe(answer('The loop reads one element past the end, so the sum is NaN.', SLOPPY_DIFF));

    expect(complete).toMatchObject({
      status: 'complete',
      applies: true,
      files: ['src/math.js'],
      summary: 'The loop reads one element past the end, so the sum is NaN.',
    });
    expect(complete.pr_url).toBeUndefined();
    // re-made: not the model's sloppy header, and it applies without fuzz to the repository's file
    expect(complete.patch).not.toContain('@@ -40');
    expect(complete.patch).toMatch(/^diff --git a\/src\/math.js b\/src\/math.js\n--- a\/src\/math.js\n\+\+\+ b\/src\/math.js\n@@ -3,7 \+3,7 @@/);
    expect(applyStrict(complete.patch, github.fileText('octo', 'calc', 'src/math.js')!)).toBe(FIXED);
    if (gitAvailable) expect(gitApply(complete.patch, FILES, 'src/math.js')).toBe(FIXED);
    expect(await client.rest(150)).toEqual([]); // solver_complete was the last frame

    // the file request: a map with declarations, no vendored/binary/generated files; JSON asked for
    const [filesRequest] = requestsOf('files');
    const prompt = filesRequest.body.messages[1].content as string;
    expect(prompt).toContain('# Issue octo/calc#7: average() returns NaN');
    expect(prompt).toContain('@bob: Looks like an off-by-one in the loop.');
    expect(prompt).toMatch(/src\/math.js \(\d+ B\)\n {2}function average\(values\)\n {2}function median\(values\)\n/);
    expect(prompt).not.toMatch(/node_modules|calc\.min\.js|logo\.png/);
    expect(filesRequest.body.messages[0].content).toMatch(/JSON/);
    if (filesRequest.body.response_format !== undefined) expect(filesRequest.body.response_format).toEqual({ type: 'json_object' });
    // only the existing path was kept and read
    expect(frames.find((f) => f.stage === 'files' && f.progress === 40)!.message).toBe('the model chose: src/math.js');
    const solutionPrompt = requestsOf('solution')[0].body.messages[1].content as string;
    expect(solutionPrompt).toContain(`## src/math.js\n\`\`\`\n${MATH}\`\`\``);
    expect(github.calls()).toContain('GET /repos/octo/calc/contents/src/math.js');
    expect(github.calls()).not.toContain('GET /repos/octo/calc/contents/src/nope.js');
    expect(model.requests.length).toBe(2);

    // stored and listed
    const list = await request(server.url).get('/api/solver/runs').expect(200);
    expect(list.body.runs[0]).toMatchObject({
      id: runId,
      issue_url: ISSUE_URL,
      repo: 'octo/calc',
      issue_number: 7,
      title: 'average() returns NaN',
      status: 'complete',
      stage: 'complete',
      progress: 100,
      applies: true,
    });
    const detail = await request(server.url).get(`/api/solver/runs/${runId}`).expect(200);
    expect(detail.body).toMatchObject({ patch: complete.patch, files: ['src/math.js'], summary: complete.summary, error: null });
    expect(detail.body.stages.map((s: { stage: string }) => s.stage)).toContain('verify');
    expect(detail.body.usage.total_tokens).toBeGreaterThan(0);
    await request(server.url).get('/api/solver/runs/00000000-0000-4000-8000-000000000000').expect(404);
  });

  it('a diff that does not apply gets one repair round that says why', async () => {
    answers.solution = () => stream(answer('First try.', BROKEN_DIFF));
    const frames = await run('s2');
    const { complete } = checkRun(frames, 's2', ['issue', 'repomap', 'files', 'solution', 'verify', 'complete']);
    expect(frames.some((f) => f.stage === 'verify' && /does not apply .*values\.size.*asking for one repair/.test(f.message))).toBe(true);
    const repair = requestsOf('repair');
    expect(repair.length).toBe(1);
    const reason = repair[0].body.messages[repair[0].body.messages.length - 1].content as string;
    expect(reason).toContain('src/math.js: hunk 1 (@@ -40,6 +40,9 @@): the line to remove `for (let i = 0; i <= values.size; i++) {` is not in the file');
    expect(repair[0].body.messages[2]).toEqual({ role: 'assistant', content: answer('First try.', BROKEN_DIFF) });
    expect(complete).toMatchObject({ status: 'complete', applies: true, files: ['src/math.js'], summary: 'Fixed the context.' });
    expect(applyStrict(complete.patch, MATH)).toBe(FIXED);
    // both answers streamed as solution, one seq throughout
    const solution = frames
      .filter((f) => f.type === 'solver_solution')
      .map((f) => f.content)
      .join('');
    expect(solution).toContain('First try.');
    expect(solution).toContain('Fixed the context.');
  });

  it("a diff that still does not apply after the repair: applies false and the model's diff as written", async () => {
    answers.solution = () => stream(answer('First try.', BROKEN_DIFF));
    const stillBroken = BROKEN_DIFF.replace('@@ -40,6 +40,9 @@', '@@ -4,7 +4,7 @@');
    answers.repair = () => stream(answer('Second try.', stillBroken));
    const frames = await run('s3');
    const { complete } = checkRun(frames, 's3', ['issue', 'repomap', 'files', 'solution', 'verify', 'complete']);
    expect(complete).toMatchObject({ status: 'complete', applies: false, files: ['src/math.js'], patch: stillBroken, summary: 'Second try.' });
    expect(model.requests.length).toBe(3); // one repair round only
    expect(frames.find((f) => f.stage === 'complete')!.message).toMatch(/does not apply/);
  });

  it('GitHub 404 ends the run with an error carrying run_id and github_error', async () => {
    client.send({ type: 'solve', id: 's4', issue_url: 'https://github.com/octo/calc/issues/99' });
    const frames = await client.collect((f) => f.id === 's4' && (f.type === 'error' || f.type === 'solver_complete'));
    const runId = frames[0].run_id;
    expect(frames[0]).toMatchObject({ type: 'solver_started', run_id: expect.stringMatching(UUID) });
    const error = frames[frames.length - 1];
    expect(error).toEqual({
      type: 'error',
      id: 's4',
      run_id: runId,
      code: 'github_error',
      message: 'GitHub: issue #99 of octo/calc was not found (404 Not Found); check the URL; a private repository needs a GITHUB_TOKEN.',
      github_status: 404,
    });
    expect(await client.rest(150)).toEqual([]);
    expect(model.requests.length).toBe(0);
    const stored = await request(server.url).get(`/api/solver/runs/${runId}`).expect(200);
    expect(stored.body).toMatchObject({ status: 'error', error: { code: 'github_error' } });
  });

  it('GitHub rate limit ends the run with github_error saying when it resets', async () => {
    const reset = Math.floor(Date.now() / 1000) + 600;
    github.setRateLimit(0, reset);
    const frames = await run('s5');
    const error = frames[frames.length - 1];
    expect(error).toMatchObject({ type: 'error', code: 'github_error', run_id: frames[0].run_id, reset_at: new Date(reset * 1000).toISOString() });
    expect(error.message).toMatch(/rate limit is used up .*resets at .*in about 10 minutes/);
  });

  it('a model failure ends the run with its upstream code and run_id', async () => {
    answers.files = () => ({ kind: 'error', status: 401 });
    const frames = await run('s6');
    expect(frames[frames.length - 1]).toMatchObject({ type: 'error', code: 'upstream_auth', run_id: frames[0].run_id, id: 's6' });
  });

  it.each([
    ['not GitHub', 'https://gitlab.com/octo/calc/issues/7'],
    ['a pull request', 'https://github.com/octo/calc/pull/7'],
    ['no number', 'https://github.com/octo/calc/issues/'],
    ['not a string', 42],
  ])('an issue_url that is %s is invalid_message naming issue_url, and no run starts', async (_name, url) => {
    client.send({ type: 'solve', id: 'bad', issue_url: url });
    const error = await client.nextOfType('error');
    expect(error).toMatchObject({ id: 'bad', code: 'invalid_message', field: 'issue_url' });
    expect(error.message).toMatch(/^issue_url: /);
    expect(error.run_id).toBeUndefined();
    expect((await client.rest(100)).filter((f) => f.type === 'solver_started')).toEqual([]);
  });

  it('stop mid-solution: solver_complete stopped with the patch so far, and the model request is aborted', async () => {
    const content = answer('Because the loop overruns.', EXACT_DIFF);
    const diffStart = content.indexOf('```diff');
    // the explanation and the diff's headers fast, then the rest slowly
    answers.solution = () => ({
      kind: 'stream',
      content: [content.slice(0, diffStart + 50), ...pieces(content.slice(diffStart + 50), 4)],
      delayMs: 150,
    });
    const abortedBefore = model.aborted;
    client.send({ type: 'solve', id: 's7', issue_url: ISSUE_URL });
    const started = await client.nextOfType('solver_started');
    await client.next((f) => f.type === 'solver_solution' && f.id === 's7', 10_000);
    client.send({ type: 'stop', id: 'stop-1', run_id: started.run_id });
    const end = await client.nextOfType('solver_complete', 10_000);
    expect(end).toMatchObject({ id: 's7', run_id: started.run_id, status: 'stopped', applies: false, files: ['src/math.js'] });
    expect(end.patch).toMatch(/^--- a\/src\/math.js\n\+\+\+ b\/src\/math.js\n/);
    expect(end.patch.length).toBeLessThan(EXACT_DIFF.length);
    await model.waitForAborted(abortedBefore + 1);
    expect(await client.rest(300)).toEqual([]);

    // stopping it again does nothing; an unknown run is not_found
    client.send({ type: 'stop', id: 'stop-2', run_id: started.run_id });
    expect(await client.rest(200)).toEqual([]);
    client.send({ type: 'stop', id: 'stop-3', run_id: '00000000-0000-4000-8000-000000000000' });
    expect(await client.nextOfType('error')).toMatchObject({ id: 'stop-3', code: 'not_found', run_id: '00000000-0000-4000-8000-000000000000' });
    const stored = await request(server.url).get(`/api/solver/runs/${started.run_id}`).expect(200);
    expect(stored.body).toMatchObject({ status: 'stopped', applies: false, patch: end.patch });
  });

  it('solver_watch from another socket mid-run: started, the current progress, the pieces after after_seq, then live to the end', async () => {
    const content = answer('Because the loop overruns.', EXACT_DIFF);
    answers.solution = () => ({ kind: 'stream', reasoning: ['Let me look.'], content: pieces(content, 6), delayMs: 40 });
    client.send({ type: 'solve', id: 'w1', issue_url: ISSUE_URL });
    const started = await client.nextOfType('solver_started');
    const runId = started.run_id as string;
    // this socket sees a few pieces, then goes away (a closed lid)
    const seen: AnyFrame[] = [];
    while (seen.length < 4) seen.push(await client.next((f) => f.type === 'solver_solution' || f.type === 'solver_reasoning', 10_000));
    client.close();
    const afterSeq = seen[seen.length - 1].seq as number;

    const other = await WsTestClient.connect(server.wsUrl);
    try {
      other.send({ type: 'solver_watch', id: 'watch-1', run_id: runId, after_seq: afterSeq });
      const frames = await other.collect((f) => f.run_id === runId && (f.type === 'solver_complete' || f.type === 'error'), 15_000);
      expect(frames[0]).toEqual({ type: 'solver_started', id: 'w1', run_id: runId, issue_url: ISSUE_URL });
      expect(frames[1]).toMatchObject({ type: 'solver_progress', run_id: runId, stage: 'solution' });
      const later = frames.filter((f) => f.type === 'solver_solution' || f.type === 'solver_reasoning');
      // exactly the pieces after after_seq, in order, none twice
      expect(later.map((f) => f.seq)).toEqual(later.map((_, i) => afterSeq + 1 + i));
      const text = [...seen, ...later]
        .filter((f) => f.type === 'solver_solution')
        .map((f) => f.content)
        .join('');
      expect(text).toBe(content);
      expect(frames.at(-1)).toMatchObject({ type: 'solver_complete', status: 'complete', applies: true });
      const stages = frames.filter((f) => f.type === 'solver_progress').map((f) => f.progress as number);
      for (let i = 1; i < stages.length; i++) expect(stages[i]).toBeGreaterThanOrEqual(stages[i - 1]);

      // watching it again once it has ended: what its row holds
      other.send({ type: 'solver_watch', run_id: runId });
      const stored = await other.collect((f) => f.run_id === runId && f.type === 'solver_complete', 5000);
      expect(stored.map((f) => f.type)).toEqual(['solver_started', 'solver_progress', 'solver_complete']);
      expect(stored[1]).toMatchObject({ stage: 'complete', progress: 100 });
      expect(stored[2]).toEqual(frames.at(-1));
    } finally {
      other.close();
    }
  });

  it('solver_watch of an unknown run is not_found; a run_id that is not a uuid is invalid_message', async () => {
    client.send({ type: 'solver_watch', id: 'w-1', run_id: '00000000-0000-4000-8000-000000000000' });
    expect(await client.nextOfType('error')).toMatchObject({ id: 'w-1', code: 'not_found', run_id: '00000000-0000-4000-8000-000000000000' });
    client.send({ type: 'solver_watch', id: 'w-2', run_id: 'nope' });
    expect(await client.nextOfType('error')).toMatchObject({ id: 'w-2', code: 'invalid_message', field: 'run_id' });
    client.send({ type: 'solver_watch', id: 'w-3', run_id: '00000000-0000-4000-8000-000000000000', after_seq: -1 });
    expect(await client.nextOfType('error')).toMatchObject({ id: 'w-3', code: 'invalid_message', field: 'after_seq' });
  });

  it('open_pr without a token: the pr stage says why and there is no pr_url', async () => {
    const frames = await run('s8', { open_pr: true });
    const { complete } = checkRun(frames, 's8', ['issue', 'repomap', 'files', 'solution', 'verify', 'pr', 'complete']);
    expect(complete).toMatchObject({ status: 'complete', applies: true });
    expect(complete.pr_url).toBeUndefined();
    expect(complete.pr_error).toMatch(/no GITHUB_TOKEN/);
    expect(github.calls().filter((c) => !c.startsWith('GET'))).toEqual([]);
  });

  it('chat works beside a run on the same socket', async () => {
    answers.solution = () => stream(answer('Slowly.', EXACT_DIFF), { delayMs: 40 });
    client.send({ type: 'solve', id: 's9', issue_url: ISSUE_URL });
    await client.next((f) => f.type === 'solver_solution' && f.id === 's9', 10_000);
    client.send({ type: 'user_message', id: 'c1', content: 'Hi while solving' });
    const frames = await client.collect((f) => f.type === 'solver_complete' && f.id === 's9', 15_000);
    const chatEnd = frames.findIndex((f) => f.type === 'agent_response_end' && f.id === 'c1');
    expect(chatEnd).toBeGreaterThanOrEqual(0);
    expect(frames[chatEnd]).toMatchObject({ status: 'complete', content: 'Hello beside' });
    expect(chatEnd).toBeLessThan(frames.length - 1);
    expect(frames[frames.length - 1]).toMatchObject({ status: 'complete', applies: true });
  });

  describe('with a GITHUB_TOKEN that may push', () => {
    let withToken: RunningApp;

    beforeAll(async () => {
      withToken = await startApp({
        DEEPSEEK_BASE_URL: model.baseUrl,
        DEEPSEEK_API_KEY: 'test-key',
        GITHUB_API_URL: github.url,
        GITHUB_TOKEN: 'ghp_test',
        RATE_LIMIT_PER_MINUTE: '0',
      });
    });
    afterAll(() => withToken.close());

    it('open_pr: branch, commit, pull request on the fake, and pr_url', async () => {
      client.close();
      client = await WsTestClient.connect(withToken.wsUrl);
      const frames = await run('s10', { open_pr: true });
      const { runId, complete } = checkRun(frames, 's10', ['issue', 'repomap', 'files', 'solution', 'verify', 'pr', 'complete']);
      expect(complete).toMatchObject({ status: 'complete', applies: true, pr_url: 'https://github.com/octo/calc/pull/101' });
      const [pull] = github.pulls('octo', 'calc');
      expect(pull).toMatchObject({ base: 'main', head: `solver/issue-7-${runId.slice(0, 8)}`, title: 'Fix #7: average() returns NaN' });
      expect(pull.body).toContain('Closes #7.');
      expect(github.fileText('octo', 'calc', 'src/math.js', pull.head)).toBe(FIXED);
      expect(github.fileText('octo', 'calc', 'src/math.js')).toBe(MATH);
      const writes = github.requests.filter((r) => r.method !== 'GET');
      expect(writes.map((r) => `${r.method} ${r.path}`)).toEqual([
        'POST /repos/octo/calc/git/refs',
        'PUT /repos/octo/calc/contents/src/math.js',
        'POST /repos/octo/calc/pulls',
      ]);
      for (const r of writes) expect(r.headers.authorization).toBe('token ghp_test');
    });

    it('open_pr: a failed pull request does not lose the checked patch; pr_error says why', async () => {
      client.close();
      client = await WsTestClient.connect(withToken.wsUrl);
      github.failNext(/^POST \/repos\/octo\/calc\/pulls$/, 422, 1, { message: 'Validation Failed', documentation_url: 'x', status: '422' });
      const frames = await run('s11', { open_pr: true });
      const { complete } = checkRun(frames, 's11', ['issue', 'repomap', 'files', 'solution', 'verify', 'pr', 'complete']);
      expect(complete).toMatchObject({ status: 'complete', applies: true });
      expect(complete.pr_url).toBeUndefined();
      expect(complete.pr_error).toBe('GitHub answered 422 for a pull request in octo/calc: Validation Failed.');
      expect(applyStrict(complete.patch, MATH)).toBe(FIXED);
    });

    it('open_pr: a patch that touches a CI workflow is never pushed', async () => {
      client.close();
      client = await WsTestClient.connect(withToken.wsUrl);
      const workflow = '--- /dev/null\n+++ b/.github/workflows/ci.yml\n@@ -0,0 +1,2 @@\n+on: push\n+jobs: {}\n';
      answers.solution = () => stream(answer('Also adds CI.', `${EXACT_DIFF}${workflow}`));
      const frames = await run('s12', { open_pr: true });
      const { complete } = checkRun(frames, 's12', ['issue', 'repomap', 'files', 'solution', 'verify', 'pr', 'complete']);
      expect(complete).toMatchObject({ applies: true, files: ['src/math.js', '.github/workflows/ci.yml'] });
      expect(complete.pr_error).toMatch(/changes \.github\/workflows\/ci\.yml/);
      expect(github.requests.filter((r) => r.method !== 'GET')).toEqual([]);
    });
  });
});

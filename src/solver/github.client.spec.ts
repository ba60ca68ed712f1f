import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { FakeGithub } from '../../test/fakes/github.fake';
import { AppError } from '../common/app-error';
import type { Environment } from '../config/environment';
import { GithubClient, githubError } from './github.client';

const client = (url: string, token?: string) =>
  new GithubClient({ GITHUB_API_URL: url, GITHUB_TOKEN: token, GITHUB_MAX_RETRIES: 3, GITHUB_RETRY_BASE_MS: 1 } as Environment);
const target = { owner: 'octo', repo: 'calc' };

/** The AppError a promise rejects with. */
async function failure(promise: Promise<unknown>): Promise<AppError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AppError);
  return error as AppError;
}

describe('GithubClient against the fake GitHub', () => {
  let github: FakeGithub;

  beforeEach(async () => {
    github = await FakeGithub.start({ token: 'ghp_secret' });
    github.addRepo({
      owner: 'octo',
      name: 'calc',
      defaultBranch: 'trunk',
      files: { 'src/math.js': 'export const x = 1;\n', 'README.md': '# calc\n', 'img/logo.png': Buffer.from([0x89, 0x50, 0, 1, 2]) },
      issues: [{ number: 7, title: 'NaN', body: 'average is NaN', author: 'alice', comments: [{ author: 'bob', body: 'same here' }] }],
    });
    github.addRepo({ owner: 'octo', name: 'secret', private: true, files: { 'a.txt': 'a' } });
  });
  afterEach(() => github.close());

  it('reads repository, issue, comments, tree, blobs and contents in GitHub formats', async () => {
    const gh = client(github.url);
    expect(await gh.repository(target)).toEqual({ fullName: 'octo/calc', defaultBranch: 'trunk', canPush: undefined });
    expect(await gh.issue(target, 7)).toEqual({
      number: 7,
      title: 'NaN',
      body: 'average is NaN',
      state: 'open',
      author: 'alice',
      comments: 1,
      isPullRequest: false,
    });
    expect(await gh.comments(target, 7)).toEqual([{ author: 'bob', body: 'same here' }]);
    const tree = await gh.tree(target, 'trunk');
    expect(tree.truncated).toBe(false);
    expect(tree.entries.map((e) => [e.path, e.type])).toEqual([
      ['README.md', 'blob'],
      ['img', 'tree'],
      ['img/logo.png', 'blob'],
      ['src', 'tree'],
      ['src/math.js', 'blob'],
    ]);
    const math = tree.entries.find((e) => e.path === 'src/math.js')!;
    expect(math.size).toBe(20);
    expect(await gh.blob(target, math.sha)).toBe('export const x = 1;\n');
    expect(await gh.file(target, 'src/math.js', 'trunk')).toEqual({ text: 'export const x = 1;\n', sha: math.sha });
    // binary content is not text
    expect(await gh.file(target, 'img/logo.png', 'trunk')).toBeUndefined();
    expect(github.calls()).toContain('GET /repos/octo/calc/git/trees/trunk');
    expect(github.requests.find((r) => r.path.endsWith('/git/trees/trunk'))!.query.get('recursive')).toBe('1');
    expect(github.requests[0].headers.authorization).toBeUndefined();
  });

  it("passes on GitHub's truncated flag of a huge tree", async () => {
    github.addRepo({ owner: 'octo', name: 'huge', truncateTree: true, files: { 'a/b.ts': 'x' } });
    const tree = await client(github.url).tree({ owner: 'octo', repo: 'huge' }, 'main');
    expect(tree).toMatchObject({
      truncated: true,
      entries: [
        { path: 'a', type: 'tree' },
        { path: 'a/b.ts', type: 'blob', size: 1 },
      ],
    });
  });

  it('sends the token when one is set, and then learns whether it may push', async () => {
    const gh = client(`${github.url}/`, 'ghp_secret');
    expect(gh.hasToken).toBe(true);
    expect((await gh.repository(target)).canPush).toBe(true);
    expect(github.requests[0].headers.authorization).toBe('token ghp_secret');
  });

  it('404: a missing issue or repository, and a private one without a token', async () => {
    const gh = client(github.url);
    const missing = await failure(gh.issue(target, 99));
    expect(missing.code).toBe('github_error');
    expect(missing.message).toBe('GitHub: issue #99 of octo/calc was not found (404 Not Found); check the URL; a private repository needs a GITHUB_TOKEN.');
    expect((await failure(gh.repository({ owner: 'octo', repo: 'nope' }))).message).toMatch(/repository octo\/nope was not found \(404/);
    expect((await failure(gh.repository({ owner: 'octo', repo: 'secret' }))).message).toMatch(/not found \(404/);
    expect((await client(github.url, 'ghp_secret').repository({ owner: 'octo', repo: 'secret' })).fullName).toBe('octo/secret');
  });

  it('401: a bad token', async () => {
    const error = await failure(client(github.url, 'wrong').issue(target, 7));
    expect(error.message).toBe('GitHub refused the token (401 Bad credentials); check GITHUB_TOKEN.');
    expect(error.details).toEqual({ github_status: 401 });
  });

  it('403 rate limit: says when it resets, from x-ratelimit-reset', async () => {
    const reset = Math.floor(Date.now() / 1000) + 25 * 60;
    github.setRateLimit(1, reset);
    const gh = client(github.url);
    await gh.issue(target, 7);
    const error = await failure(gh.issue(target, 7));
    const at = new Date(reset * 1000).toISOString();
    expect(error.code).toBe('github_error');
    expect(error.message).toBe(
      `GitHub's API rate limit is used up (60 requests an hour without a token); it resets at ${at} (in about 25 minutes). A GITHUB_TOKEN raises the limit to 5,000 an hour.`,
    );
    expect(error.details).toEqual({ github_status: 403, reset_at: at });
  });

  it('other refusals and server errors', async () => {
    const gh = client(github.url);
    github.failNext(/issues\/7$/, 403, 1, { message: 'Resource not accessible by integration', documentation_url: 'x' });
    expect((await failure(gh.issue(target, 7))).message).toBe('GitHub refused access to issue #7 of octo/calc (403: Resource not accessible by integration).');
    github.failNext(/issues\/7$/, 502, 4); // the first answer and three retries
    expect((await failure(gh.issue(target, 7))).message).toBe('GitHub failed while reading issue #7 of octo/calc (502); try again later.');
  });

  it('retries 5xx answers and dropped connections with back-off, then succeeds', async () => {
    const gh = client(github.url);
    github.requests.length = 0;
    github.failNext(/issues\/7$/, 503, 2);
    await expect(gh.issue(target, 7)).resolves.toMatchObject({ number: 7 });
    github.failNext(/issues\/7$/, 0, 1);
    await expect(gh.issue(target, 7)).resolves.toMatchObject({ number: 7 });
    expect(github.calls().filter((c) => c === 'GET /repos/octo/calc/issues/7')).toHaveLength(5);
  });

  it("a secondary rate limit (429 or 403) waits GitHub's retry-after and tries again; a long one fails saying so", async () => {
    const gh = client(github.url);
    github.requests.length = 0;
    const secondary = { message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.', documentation_url: 'x' };
    github.failNext(/issues\/7$/, 429, 1, secondary, { 'retry-after': '1' });
    github.failNext(/issues\/7$/, 403, 1, secondary, { 'retry-after': '0' });
    await expect(gh.issue(target, 7)).resolves.toMatchObject({ number: 7 });
    expect(github.calls()).toHaveLength(3);
    github.failNext(/issues\/7$/, 403, 1, secondary, { 'retry-after': '600' });
    const error = await failure(gh.issue(target, 7));
    expect(error.message).toBe("GitHub's secondary rate limit was hit; retry after 600 s.");
    expect(error.details).toEqual({ github_status: 403 });
    expect(github.calls()).toHaveLength(4);
  });

  it('the hourly limit is not retried (it resets within the hour; the error says when)', async () => {
    github.requests.length = 0;
    github.setRateLimit(0, Math.floor(Date.now() / 1000) + 600);
    await expect(failure(client(github.url).issue(target, 7))).resolves.toMatchObject({ message: expect.stringContaining('rate limit is used up') });
    expect(github.calls()).toHaveLength(1);
    github.setRateLimit(Number.POSITIVE_INFINITY);
  });

  it('a stop during a back-off ends the wait at once', async () => {
    const controller = new AbortController();
    github.failNext(/issues\/7$/, 502, 1);
    const gh = new GithubClient({ GITHUB_API_URL: github.url, GITHUB_MAX_RETRIES: 3, GITHUB_RETRY_BASE_MS: 60_000 } as Environment);
    const pending = gh.issue(target, 7, controller.signal).catch((e: unknown) => e);
    await new Promise((resolve) => setTimeout(resolve, 100));
    controller.abort();
    const error = await pending;
    expect(error).not.toBeInstanceOf(AppError);
    expect((error as Error).name).toBe('AbortError');
  });

  it('unreachable: nothing listens at GITHUB_API_URL', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const error = await failure(client(`http://127.0.0.1:${port}`).issue(target, 7));
    // no internal address or socket error for the user (they are logged)
    expect(error.message).toBe('GitHub could not be reached (reading issue #7 of octo/calc); try again later.');
  });

  it('an aborted request rejects with the abort, not a github_error', async () => {
    const controller = new AbortController();
    controller.abort();
    const error = await client(github.url)
      .issue(target, 7, controller.signal)
      .catch((e: unknown) => e);
    expect(error).not.toBeInstanceOf(AppError);
    expect((error as Error).name).toBe('AbortError');
  });

  it('writes a branch, a commit per file and a pull request', async () => {
    const gh = client(github.url, 'ghp_secret');
    const head = await gh.branchHead(target, 'trunk');
    await gh.createBranch(target, 'fix-7', head);
    const tree = await gh.tree(target, 'trunk');
    const sha = tree.entries.find((e) => e.path === 'src/math.js')!.sha;
    await gh.putFile(target, { path: 'src/math.js', text: 'export const x = 2;\n', branch: 'fix-7', message: 'fix', sha });
    await gh.putFile(target, { path: 'src/new.js', text: 'new\n', branch: 'fix-7', message: 'add' });
    const pr = await gh.openPullRequest(target, { title: 'Fix #7', body: 'b', head: 'fix-7', base: 'trunk' });
    expect(pr).toEqual({ url: 'https://github.com/octo/calc/pull/101', number: 101 });
    expect(github.fileText('octo', 'calc', 'src/math.js', 'fix-7')).toBe('export const x = 2;\n');
    expect(github.fileText('octo', 'calc', 'src/new.js', 'fix-7')).toBe('new\n');
    expect(github.fileText('octo', 'calc', 'src/math.js')).toBe('export const x = 1;\n');
    // a stale sha is refused as GitHub does
    const stale = await failure(gh.putFile(target, { path: 'src/math.js', text: 'x', branch: 'fix-7', message: 'again', sha }));
    expect(stale.message).toMatch(/^GitHub answered 409 for a commit of src\/math.js to octo\/calc@fix-7: src\/math.js does not match/);
  });
});

describe('githubError', () => {
  const context = { hasToken: true, now: Date.parse('2026-01-01T00:00:00Z') };
  const response = (status: number, headers: Record<string, string> = {}, message = 'x') => ({ status, response: { status, headers, data: { message } } });

  it('maps a 429 rate limit with a token, and a secondary limit with retry-after', () => {
    const reset = Date.parse('2026-01-01T00:00:30Z') / 1000;
    const limited = githubError(
      response(429, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset), 'x-ratelimit-limit': '5000' }),
      'it',
      context,
    );
    expect(limited.message).toBe("GitHub's API rate limit is used up (5000 requests an hour); it resets at 2026-01-01T00:00:30.000Z (in about a minute).");
    expect(githubError(response(403, { 'retry-after': '60' }), 'it', context).message).toBe("GitHub's secondary rate limit was hit; retry after 60 s.");
  });

  it("maps a 422 with GitHub's message, and a failure without a response as unreachable", () => {
    expect(githubError(response(422, {}, 'Reference already exists'), 'a new branch b', context).message).toBe(
      'GitHub answered 422 for a new branch b: Reference already exists.',
    );
    expect(githubError({ status: 500, message: 'connect ECONNREFUSED 127.0.0.1:1' }, 'it', context).message).toBe(
      'GitHub could not be reached (reading it); try again later.',
    );
    expect(githubError(response(403, {}, 'You have exceeded a secondary rate limit.'), 'it', context).message).toBe(
      "GitHub's secondary rate limit was hit; retry after 60 s.",
    );
  });
});

/**
 * A real HTTP server (node:http on 127.0.0.1, any free port) that speaks the parts of GitHub's REST API
 * the Solver uses, in GitHub's formats: repository, issue, comments, recursive git tree (with
 * `truncated`), blobs and contents (base64 wrapped at 60 characters), refs, contents PUT/DELETE, pulls;
 * `x-ratelimit-*` headers on every answer; 404 `{"message":"Not Found","documentation_url"}`, 401
 * `Bad credentials`, 403 rate limit with `x-ratelimit-remaining: 0` and `x-ratelimit-reset`. Each
 * test defines its small in-memory repositories. See /work/shared/UPSTREAM.md.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export interface FakeIssue {
  number: number;
  title: string;
  body?: string | null;
  state?: 'open' | 'closed';
  author?: string;
  comments?: Array<{ author?: string; body: string }>;
}

export interface FakeRepoSpec {
  owner: string;
  name: string;
  defaultBranch?: string;
  /** Path → text of the default branch. */
  files: Record<string, string | Buffer>;
  issues?: FakeIssue[];
  /** Answer 404 to reads without a token (a private repository). */
  private?: boolean;
  /** Mark the recursive tree `truncated: true` (GitHub's answer for huge trees). */
  truncateTree?: boolean;
}

export interface RecordedGithubRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: any;
}

interface Branch {
  /** Commit sha → files at that commit. */
  head: string;
  files: Map<string, Buffer>;
}

interface Repo {
  spec: FakeRepoSpec;
  defaultBranch: string;
  branches: Map<string, Branch>;
  issues: Map<number, FakeIssue>;
  pulls: Array<{ number: number; title: string; body: string; head: string; base: string; html_url: string }>;
}

interface FakeGithubOptions {
  /** When set, `Authorization` must carry it (`token X` or `Bearer X`) or the answer is 401; writes need it. */
  token?: string;
  /** Requests allowed before the 403 rate-limit answer (default: unlimited). */
  rateLimit?: number;
  /** `x-ratelimit-reset`, epoch seconds (default: an hour from start). */
  rateLimitReset?: number;
}

const DOCS = 'https://docs.github.com/rest';
const gitSha = (kind: string, content: Buffer) => createHash('sha1').update(`${kind} ${content.length}\0`).update(content).digest('hex');
const toBuffer = (text: string | Buffer) => (Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8'));
/** GitHub wraps base64 content at 60 characters with `\n`. */
const base64Wrapped = (content: Buffer) => (content.toString('base64').match(/.{1,60}/g) ?? []).join('\n') + '\n';

export class FakeGithub {
  readonly url: string;
  readonly requests: RecordedGithubRequest[] = [];
  private readonly repos = new Map<string, Repo>();
  private token?: string;
  private remaining: number;
  private reset: number;
  private readonly failures: Array<{ match: RegExp; status: number; body?: object; times: number; headers?: Record<string, string> }> = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: http.Server,
    options: FakeGithubOptions,
  ) {
    const { port } = server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
    this.token = options.token;
    this.remaining = options.rateLimit ?? Number.POSITIVE_INFINITY;
    this.reset = options.rateLimitReset ?? Math.floor(Date.now() / 1000) + 3600;
  }

  static async start(options: FakeGithubOptions = {}): Promise<FakeGithub> {
    const server = http.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const fake = new FakeGithub(server, options);
    server.on('connection', (socket) => {
      fake.sockets.add(socket);
      socket.on('close', () => fake.sockets.delete(socket));
    });
    server.on('request', (req, res) => {
      fake.handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) fake.json(res, 500, { message: `fake failure: ${String(error)}` });
        else res.destroy();
      });
    });
    return fake;
  }

  /** Adds (or replaces) a repository. */
  addRepo(spec: FakeRepoSpec): void {
    const files = new Map(Object.entries(spec.files).map(([path, text]) => [path, toBuffer(text)]));
    const defaultBranch = spec.defaultBranch ?? 'main';
    const head = gitSha('commit', Buffer.from(`${spec.owner}/${spec.name}@${defaultBranch}`));
    this.repos.set(`${spec.owner}/${spec.name}`.toLowerCase(), {
      spec,
      defaultBranch,
      branches: new Map([[defaultBranch, { head, files }]]),
      issues: new Map((spec.issues ?? []).map((i) => [i.number, i])),
      pulls: [],
    });
  }

  /** Text of a file on a branch (default: the default branch), or undefined. */
  fileText(owner: string, name: string, path: string, branch?: string): string | undefined {
    const repo = this.repo(owner, name);
    return repo?.branches
      .get(branch ?? repo.defaultBranch)
      ?.files.get(path)
      ?.toString('utf8');
  }

  branches(owner: string, name: string): string[] {
    return [...(this.repo(owner, name)?.branches.keys() ?? [])];
  }

  pulls(owner: string, name: string): Repo['pulls'] {
    return this.repo(owner, name)?.pulls ?? [];
  }

  /** From now on answer the rate-limit 403 after `n` more requests. */
  setRateLimit(n: number, resetEpochSeconds?: number): void {
    this.remaining = n;
    if (resetEpochSeconds !== undefined) this.reset = resetEpochSeconds;
  }

  /**
   * The next `times` requests whose `METHOD path` matches answer `status` with GitHub's body (and
   * `headers` over the usual ones, e.g. `retry-after`); status 0 drops the connection unanswered.
   */
  failNext(match: RegExp, status: number, times = 1, body?: object, headers?: Record<string, string>): void {
    this.failures.push({ match, status, body, times, headers });
  }

  /** Requests (method + path) made so far, e.g. `GET /repos/o/r/issues/1`. */
  calls(): string[] {
    return this.requests.map((r) => `${r.method} ${r.path}`);
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---------------------------------------------------------------------------------------------

  private repo(owner: string, name: string): Repo | undefined {
    return this.repos.get(`${owner}/${name}`.toLowerCase());
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const url = new URL(req.url ?? '/', this.url);
    const path = decodeURIComponent(url.pathname);
    let body: any;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      body = raw;
    }
    const method = req.method ?? 'GET';
    this.requests.push({ method, path, query: url.searchParams, headers: { ...req.headers }, body });

    const authorized = this.authorize(req);
    if (authorized === 'bad') return this.json(res, 401, { message: 'Bad credentials', documentation_url: DOCS, status: '401' });

    if (this.remaining <= 0) {
      return this.json(res, 403, {
        message:
          "API rate limit exceeded for 127.0.0.1. (But here's the good news: Authenticated requests get a higher rate limit. Check out the documentation for more details.)",
        documentation_url: 'https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting',
      });
    }
    this.remaining -= 1;

    const failure = this.failures.find((f) => f.times > 0 && f.match.test(`${method} ${path}`));
    if (failure) {
      failure.times -= 1;
      if (failure.status === 0) return void req.socket.destroy();
      const body = failure.body ?? { message: http.STATUS_CODES[failure.status] ?? 'Error', documentation_url: DOCS, status: String(failure.status) };
      return this.json(res, failure.status, body, failure.headers);
    }

    const match = /^\/repos\/([^/]+)\/([^/]+)(\/.*)?$/.exec(path);
    if (!match) return this.notFound(res);
    const repo = this.repo(match[1], match[2]);
    if (!repo || (repo.spec.private && authorized !== 'ok')) return this.notFound(res);
    const rest = match[3] ?? '';
    const writing = method !== 'GET';
    if (writing && authorized !== 'ok') {
      return this.json(res, 401, { message: 'Requires authentication', documentation_url: DOCS, status: '401' });
    }
    return this.route(repo, method, rest, url, body, req, res);
  }

  private route(repo: Repo, method: string, rest: string, url: URL, body: any, req: http.IncomingMessage, res: http.ServerResponse): void {
    const full = `${repo.spec.owner}/${repo.spec.name}`;
    const api = `${this.url}/repos/${full}`;
    const html = `https://github.com/${full}`;
    let m: RegExpExecArray | null;

    if (method === 'GET' && rest === '') {
      return this.json(res, 200, {
        id: 1296269,
        node_id: 'MDEwOlJlcG9zaXRvcnkxMjk2MjY5',
        name: repo.spec.name,
        full_name: full,
        owner: { login: repo.spec.owner, id: 1, type: 'User' },
        private: !!repo.spec.private,
        html_url: html,
        url: api,
        default_branch: repo.defaultBranch,
        visibility: repo.spec.private ? 'private' : 'public',
        ...(this.token && this.authorize(req) === 'ok' ? { permissions: { admin: false, maintain: false, push: true, triage: true, pull: true } } : {}),
      });
    }

    if (method === 'GET' && (m = /^\/issues\/(\d+)$/.exec(rest))) {
      const issue = repo.issues.get(Number(m[1]));
      if (!issue) return this.notFound(res);
      return this.json(res, 200, this.issueJson(repo, issue));
    }

    if (method === 'GET' && (m = /^\/issues\/(\d+)\/comments$/.exec(rest))) {
      const issue = repo.issues.get(Number(m[1]));
      if (!issue) return this.notFound(res);
      const perPage = Math.min(100, Number(url.searchParams.get('per_page') ?? 30));
      return this.json(
        res,
        200,
        (issue.comments ?? []).slice(0, perPage).map((c, i) => ({
          id: 1000 + i,
          html_url: `${html}/issues/${issue.number}#issuecomment-${1000 + i}`,
          user: { login: c.author ?? 'commenter', id: 2 },
          body: c.body,
          created_at: '2026-01-02T00:00:00Z',
          author_association: 'NONE',
        })),
      );
    }

    if (method === 'GET' && (m = /^\/git\/trees\/(.+)$/.exec(rest))) {
      const branch = this.branchByRef(repo, m[1]);
      if (!branch) return this.notFound(res);
      const recursive = url.searchParams.has('recursive');
      return this.json(res, 200, {
        sha: gitSha('tree', Buffer.from(branch.head)),
        url: `${api}/git/trees/${branch.head}`,
        tree: this.treeEntries(repo, branch, recursive),
        truncated: !!repo.spec.truncateTree,
      });
    }

    if (method === 'GET' && (m = /^\/git\/blobs\/([0-9a-f]{40})$/.exec(rest))) {
      for (const branch of repo.branches.values()) {
        for (const content of branch.files.values()) {
          if (gitSha('blob', content) === m[1]) {
            return this.json(res, 200, {
              sha: m[1],
              node_id: 'B_fake',
              size: content.length,
              url: `${api}/git/blobs/${m[1]}`,
              content: base64Wrapped(content),
              encoding: 'base64',
            });
          }
        }
      }
      return this.notFound(res);
    }

    if (method === 'GET' && (m = /^\/contents\/(.+)$/.exec(rest))) {
      const branch = this.branchByRef(repo, url.searchParams.get('ref') ?? repo.defaultBranch);
      const content = branch?.files.get(m[1]);
      if (!branch || !content) return this.notFound(res);
      if (String(req.headers.accept ?? '').includes('application/vnd.github.raw')) {
        res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', ...this.rateHeaders(req) });
        return void res.end(content);
      }
      return this.json(res, 200, this.contentJson(repo, m[1], content, true));
    }

    if (method === 'GET' && (m = /^\/git\/ref\/heads\/(.+)$/.exec(rest))) {
      const branch = repo.branches.get(m[1]);
      if (!branch) return this.notFound(res);
      return this.json(res, 200, {
        ref: `refs/heads/${m[1]}`,
        node_id: 'REF_fake',
        url: `${api}/git/refs/heads/${m[1]}`,
        object: { sha: branch.head, type: 'commit', url: `${api}/git/commits/${branch.head}` },
      });
    }

    if (method === 'POST' && rest === '/git/refs') {
      const name = typeof body?.ref === 'string' ? body.ref.replace(/^refs\/heads\//, '') : '';
      const from = [...repo.branches.values()].find((b) => b.head === body?.sha);
      if (!name || !body.ref.startsWith('refs/') || !from) return this.unprocessable(res, 'Reference update failed');
      if (repo.branches.has(name)) return this.unprocessable(res, 'Reference already exists');
      repo.branches.set(name, { head: gitSha('commit', Buffer.from(`${name}:${from.head}`)), files: new Map(from.files) });
      return this.json(res, 201, {
        ref: body.ref,
        node_id: 'REF_new',
        url: `${api}/git/${body.ref}`,
        object: { sha: repo.branches.get(name)!.head, type: 'commit', url: `${api}/git/commits/${from.head}` },
      });
    }

    if ((method === 'PUT' || method === 'DELETE') && (m = /^\/contents\/(.+)$/.exec(rest))) {
      const path = m[1];
      const branchName = body?.branch ?? repo.defaultBranch;
      const branch = repo.branches.get(branchName);
      if (!branch) return this.notFound(res);
      if (typeof body?.message !== 'string') return this.unprocessable(res, 'Invalid request.\n\n"message" wasn\'t supplied.');
      const existing = branch.files.get(path);
      if (existing && body.sha === undefined) return this.unprocessable(res, 'Invalid request.\n\n"sha" wasn\'t supplied.');
      if (existing && body.sha !== gitSha('blob', existing)) {
        return this.json(res, 409, { message: `${path} does not match ${body.sha}`, documentation_url: DOCS, status: '409' });
      }
      if (method === 'DELETE') {
        if (!existing) return this.notFound(res);
        branch.files.delete(path);
        branch.head = gitSha('commit', Buffer.from(`${branch.head}-${path}-delete`));
        return this.json(res, 200, { content: null, commit: { sha: branch.head, message: body.message } });
      }
      if (typeof body?.content !== 'string') return this.unprocessable(res, 'Invalid request.\n\n"content" wasn\'t supplied.');
      const content = Buffer.from(body.content, 'base64');
      branch.files.set(path, content);
      branch.head = gitSha('commit', Buffer.from(`${branch.head}-${path}-${gitSha('blob', content)}`));
      return this.json(res, existing ? 200 : 201, {
        content: this.contentJson(repo, path, content, false),
        commit: { sha: branch.head, message: body.message, html_url: `${html}/commit/${branch.head}` },
      });
    }

    if (method === 'POST' && rest === '/pulls') {
      if (!body?.head || !body?.base || !repo.branches.has(body.head) || !repo.branches.has(body.base)) {
        return this.unprocessable(res, 'Validation Failed');
      }
      const number = 100 + repo.pulls.length + 1;
      const pull = { number, title: body.title, body: body.body ?? '', head: body.head, base: body.base, html_url: `${html}/pull/${number}` };
      repo.pulls.push(pull);
      return this.json(res, 201, {
        id: 9000 + number,
        number,
        state: 'open',
        title: pull.title,
        body: pull.body,
        html_url: pull.html_url,
        url: `${api}/pulls/${number}`,
        head: { ref: body.head, sha: repo.branches.get(body.head)!.head },
        base: { ref: body.base, sha: repo.branches.get(body.base)!.head },
        user: { login: 'solver-bot' },
      });
    }

    return this.notFound(res);
  }

  private branchByRef(repo: Repo, ref: string): Branch | undefined {
    return repo.branches.get(ref) ?? [...repo.branches.values()].find((b) => b.head === ref);
  }

  /** Entries in GitHub's order: depth first, names in byte order (a directory sorts as `name/`). */
  private treeEntries(repo: Repo, branch: Branch, recursive: boolean) {
    const api = `${this.url}/repos/${repo.spec.owner}/${repo.spec.name}`;
    interface Dir {
      dirs: Map<string, Dir>;
      files: Map<string, Buffer>;
    }
    const root: Dir = { dirs: new Map(), files: new Map() };
    for (const [path, content] of branch.files) {
      const parts = path.split('/');
      let dir = root;
      for (const part of parts.slice(0, -1)) {
        if (!dir.dirs.has(part)) dir.dirs.set(part, { dirs: new Map(), files: new Map() });
        dir = dir.dirs.get(part)!;
      }
      dir.files.set(parts[parts.length - 1], content);
    }
    const entries: object[] = [];
    const walk = (dir: Dir, prefix: string) => {
      const names = [...[...dir.dirs.keys()].map((n) => `${n}/`), ...dir.files.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      for (const name of names) {
        if (name.endsWith('/')) {
          const path = prefix + name.slice(0, -1);
          const sha = gitSha('tree', Buffer.from(path));
          entries.push({ path, mode: '040000', type: 'tree', sha, url: `${api}/git/trees/${sha}` });
          if (recursive) walk(dir.dirs.get(name.slice(0, -1))!, `${path}/`);
        } else {
          const content = dir.files.get(name)!;
          const sha = gitSha('blob', content);
          entries.push({ path: prefix + name, mode: '100644', type: 'blob', sha, size: content.length, url: `${api}/git/blobs/${sha}` });
        }
      }
    };
    walk(root, '');
    return entries;
  }

  private contentJson(repo: Repo, path: string, content: Buffer, withContent: boolean) {
    const full = `${repo.spec.owner}/${repo.spec.name}`;
    const sha = gitSha('blob', content);
    return {
      type: 'file',
      encoding: 'base64',
      size: content.length,
      name: path.slice(path.lastIndexOf('/') + 1),
      path,
      ...(withContent ? { content: base64Wrapped(content) } : {}),
      sha,
      url: `${this.url}/repos/${full}/contents/${path}?ref=${repo.defaultBranch}`,
      git_url: `${this.url}/repos/${full}/git/blobs/${sha}`,
      html_url: `https://github.com/${full}/blob/${repo.defaultBranch}/${path}`,
      download_url: `https://raw.githubusercontent.com/${full}/${repo.defaultBranch}/${path}`,
    };
  }

  private issueJson(repo: Repo, issue: FakeIssue) {
    const full = `${repo.spec.owner}/${repo.spec.name}`;
    return {
      url: `${this.url}/repos/${full}/issues/${issue.number}`,
      html_url: `https://github.com/${full}/issues/${issue.number}`,
      id: 5000 + issue.number,
      number: issue.number,
      title: issue.title,
      user: { login: issue.author ?? 'reporter', id: 3 },
      labels: [{ name: 'bug' }],
      state: issue.state ?? 'open',
      locked: false,
      comments: issue.comments?.length ?? 0,
      created_at: '2026-01-01T00:00:00Z',
      updated_at: '2026-01-02T00:00:00Z',
      author_association: 'NONE',
      body: issue.body ?? null,
    };
  }

  /** 'ok' with the right token, 'none' without a header, 'bad' with a wrong one. */
  private authorize(req: http.IncomingMessage): 'ok' | 'none' | 'bad' {
    const header = req.headers.authorization;
    if (!header) return 'none';
    const match = /^(?:token|bearer)\s+(.+)$/i.exec(header);
    if (!match || !this.token || match[1].trim() !== this.token) return 'bad';
    return 'ok';
  }

  /** GitHub allows 60 requests an hour without a token, 5,000 with one. */
  private rateHeaders(req: http.IncomingMessage): Record<string, string> {
    const limit = this.authorize(req) === 'ok' ? 5000 : 60;
    const remaining = Number.isFinite(this.remaining) ? Math.max(0, Math.min(limit, this.remaining)) : limit;
    return {
      'x-ratelimit-limit': String(limit),
      'x-ratelimit-remaining': String(remaining),
      'x-ratelimit-reset': String(this.reset),
      'x-ratelimit-used': String(limit - remaining),
      'x-ratelimit-resource': 'core',
      'x-github-api-version-selected': '2022-11-28',
    };
  }

  private json(res: http.ServerResponse, status: number, payload: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(payload);
    res.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(text),
      ...this.rateHeaders(res.req),
      ...headers,
    });
    res.end(text);
  }

  private notFound(res: http.ServerResponse): void {
    this.json(res, 404, { message: 'Not Found', documentation_url: DOCS, status: '404' });
  }

  private unprocessable(res: http.ServerResponse, message: string): void {
    this.json(res, 422, { message, documentation_url: DOCS, status: '422' });
  }
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

// ---- a sample repository with a real bug, for Solver tests ----

/** `average` reads one element past the end of the array, so it returns NaN. */
export const CALC_MATH = [
  "'use strict';",
  '',
  '/** Mean of a list of numbers. */',
  'function average(values) {',
  '  let sum = 0;',
  '  for (let i = 0; i <= values.length; i++) {',
  '    sum += values[i];',
  '  }',
  '  return sum / values.length;',
  '}',
  '',
  'function median(values) {',
  '  const sorted = [...values].sort();',
  '  return sorted[Math.floor(sorted.length / 2)];',
  '}',
  '',
  'module.exports = { average, median };',
  '',
].join('\n');
export const CALC_MATH_FIXED = CALC_MATH.replace('i <= values.length', 'i < values.length');
/** The fix of the bug as an exact unified diff. */
export const CALC_FIX_DIFF = [
  '--- a/src/math.js',
  '+++ b/src/math.js',
  '@@ -4,7 +4,7 @@',
  ' function average(values) {',
  '   let sum = 0;',
  '-  for (let i = 0; i <= values.length; i++) {',
  '+  for (let i = 0; i < values.length; i++) {',
  '     sum += values[i];',
  '   }',
  '   return sum / values.length;',
  '',
].join('\n');
export const CALC_INDEX = "const { average } = require('./math');\n\nconsole.log(average([1, 2, 3]));\n";

/** The whole default branch: sources, a test, and files the repository map must skip. */
export const CALC_FILES: Record<string, string | Buffer> = {
  'package.json': '{ "name": "calc", "main": "src/index.js" }\n',
  'README.md': '# calc\n\nAverage and median.\n',
  'src/math.js': CALC_MATH,
  'src/index.js': CALC_INDEX,
  'test/math.test.js': "const { average } = require('../src/math');\ntest('average', () => expect(average([2, 4])).toBe(3));\n",
  'node_modules/left-pad/index.js': 'module.exports = function leftPad(s) { return s; };\n',
  'dist/calc.min.js': 'function average(n){for(var s=0,i=0;i<=n.length;i++)s+=n[i];return s/n.length}\n',
  'docs/logo.png': Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d]),
};

export const CALC_ISSUE: FakeIssue = {
  number: 7,
  title: 'average() returns NaN',
  body: 'Calling `average([1, 2, 3])` from src/index.js prints NaN instead of 2.',
  author: 'alice',
  comments: [{ author: 'bob', body: 'Looks like an off-by-one in the loop.' }],
};

export const gitAvailable = (() => {
  try {
    execFileSync('git', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/**
 * `git apply` of a patch onto `files` in a scratch work tree: the text of `path` afterwards, or
 * undefined when git refuses the patch. The outside judge of "applies without fuzz".
 */
export function gitApply(patch: string, files: Record<string, string | Buffer>, path: string): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'solver-git-apply-'));
  try {
    for (const [p, content] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, p)), { recursive: true });
      writeFileSync(join(dir, p), content);
    }
    writeFileSync(join(dir, 'fix.patch'), patch);
    execFileSync('git', ['init', '-q'], { cwd: dir });
    execFileSync('git', ['apply', '--check', 'fix.patch'], { cwd: dir, stdio: 'pipe' });
    execFileSync('git', ['apply', 'fix.patch'], { cwd: dir, stdio: 'pipe' });
    return readFileSync(join(dir, path), 'utf8');
  } catch {
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

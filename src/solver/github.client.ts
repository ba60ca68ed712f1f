import { Injectable, Logger } from '@nestjs/common';
import { Octokit } from '@octokit/rest';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppError } from '../common/app-error';
import { Environment } from '../config/environment';
import { retryDelay, RetryPolicy, secondaryLimitWait } from './github-retry';
import { TreeEntry } from './repo-map';

/** Longest wait for one attempt of a GitHub request; GitHub answers in well under a second when it is well. */
export const GITHUB_TIMEOUT_MS = 20_000;

export interface RepoInfo {
  fullName: string;
  defaultBranch: string;
  /** From `permissions.push` (only present with a token); undefined when GitHub did not say. */
  canPush?: boolean;
}

export interface IssueInfo {
  number: number;
  title: string;
  body: string;
  state: string;
  author: string;
  comments: number;
  isPullRequest: boolean;
}

export interface CommentInfo {
  author: string;
  body: string;
}

export interface RepoTree {
  entries: TreeEntry[];
  truncated: boolean;
}

export interface RepoFile {
  text: string;
  sha: string;
}

interface Target {
  owner: string;
  repo: string;
}

interface OctokitLikeError {
  name?: string;
  status?: number;
  message?: string;
  response?: { status: number; headers: Record<string, string | undefined>; data?: unknown };
}

/**
 * GitHub's REST API through Octokit (`baseUrl` = GITHUB_API_URL; the token is optional). 5xx
 * answers, dropped connections and short secondary rate limits are retried (github-retry.ts); every
 * final failure becomes an `AppError` with code `github_error` and a message saying what to do,
 * without internal addresses or socket errors (those are logged); a request aborted through
 * `signal` (a stopped run) rejects with the abort as is.
 */
@Injectable()
export class GithubClient {
  private readonly logger = new Logger(GithubClient.name);
  private readonly octokit: Octokit;
  private readonly policy: RetryPolicy;

  constructor(private readonly env: Environment) {
    this.policy = { retries: env.GITHUB_MAX_RETRIES ?? 3, baseMs: env.GITHUB_RETRY_BASE_MS ?? 1000, maxWaitMs: 60_000 };
    const quiet = () => undefined;
    this.octokit = new Octokit({
      baseUrl: env.GITHUB_API_URL.replace(/\/+$/, ''),
      auth: env.GITHUB_TOKEN?.trim() || undefined,
      userAgent: 'nest-chat-system-solver',
      log: { debug: quiet, info: quiet, warn: quiet, error: quiet },
    });
  }

  get hasToken(): boolean {
    return !!this.env.GITHUB_TOKEN?.trim();
  }

  async repository(t: Target, signal?: AbortSignal): Promise<RepoInfo> {
    const { data } = await this.call(`repository ${t.owner}/${t.repo}`, signal, (request) => this.octokit.repos.get({ ...t, request }));
    return { fullName: data.full_name, defaultBranch: data.default_branch, canPush: data.permissions?.push };
  }

  async issue(t: Target, number: number, signal?: AbortSignal): Promise<IssueInfo> {
    const { data } = await this.call(`issue #${number} of ${t.owner}/${t.repo}`, signal, (request) =>
      this.octokit.issues.get({ ...t, issue_number: number, request }),
    );
    return {
      number: data.number,
      title: data.title,
      body: typeof data.body === 'string' ? data.body : '',
      state: data.state,
      author: data.user?.login ?? 'unknown',
      comments: data.comments ?? 0,
      isPullRequest: !!data.pull_request,
    };
  }

  /** The first `max` comments, oldest first. */
  async comments(t: Target, number: number, max = 30, signal?: AbortSignal): Promise<CommentInfo[]> {
    const { data } = await this.call(`comments of issue #${number} of ${t.owner}/${t.repo}`, signal, (request) =>
      this.octokit.issues.listComments({ ...t, issue_number: number, per_page: Math.min(100, max), request }),
    );
    return data.slice(0, max).map((c) => ({ author: c.user?.login ?? 'unknown', body: c.body ?? '' }));
  }

  async tree(t: Target, ref: string, signal?: AbortSignal): Promise<RepoTree> {
    const { data } = await this.call(`the file tree of ${t.owner}/${t.repo}@${ref}`, signal, (request) =>
      this.octokit.git.getTree({ ...t, tree_sha: ref, recursive: '1', request }),
    );
    const entries: TreeEntry[] = [];
    for (const e of data.tree) {
      if (typeof e.path !== 'string' || typeof e.sha !== 'string') continue;
      entries.push({ path: e.path, type: (e.type ?? 'blob') as TreeEntry['type'], size: e.size, sha: e.sha });
    }
    return { entries, truncated: !!data.truncated };
  }

  /** A blob's text; undefined for binary content. */
  async blob(t: Target, sha: string, signal?: AbortSignal): Promise<string | undefined> {
    const { data } = await this.call(`blob ${sha.slice(0, 12)} of ${t.owner}/${t.repo}`, signal, (request) =>
      this.octokit.git.getBlob({ ...t, file_sha: sha, request }),
    );
    return decodeText(data.content, data.encoding);
  }

  /** A file's text at `ref` (contents API, base64); undefined when it is binary or not a file. */
  async file(t: Target, path: string, ref: string, signal?: AbortSignal): Promise<RepoFile | undefined> {
    const { data } = await this.call(`${path} in ${t.owner}/${t.repo}@${ref}`, signal, (request) =>
      this.octokit.repos.getContent({ ...t, path, ref, request }),
    );
    if (Array.isArray(data) || data.type !== 'file') return undefined;
    const file = data as { content?: string; encoding?: string; sha: string };
    // Over 1 MB the contents API sends no content (encoding "none"): read the blob instead.
    if (!file.content && file.encoding === 'none') {
      const text = await this.blob(t, file.sha, signal);
      return text === undefined ? undefined : { text, sha: file.sha };
    }
    const text = decodeText(file.content ?? '', file.encoding ?? 'base64');
    return text === undefined ? undefined : { text, sha: file.sha };
  }

  async branchHead(t: Target, branch: string, signal?: AbortSignal): Promise<string> {
    const { data } = await this.call(`branch ${branch} of ${t.owner}/${t.repo}`, signal, (request) =>
      this.octokit.git.getRef({ ...t, ref: `heads/${branch}`, request }),
    );
    return data.object.sha;
  }

  async createBranch(t: Target, branch: string, sha: string, signal?: AbortSignal): Promise<void> {
    await this.call(`a new branch ${branch} in ${t.owner}/${t.repo}`, signal, (request) =>
      this.octokit.git.createRef({ ...t, ref: `refs/heads/${branch}`, sha, request }),
    );
  }

  /** Creates or updates one file on a branch (one commit); `sha` is the blob it replaces. */
  async putFile(t: Target, change: { path: string; text: string; branch: string; message: string; sha?: string }, signal?: AbortSignal): Promise<void> {
    await this.call(`a commit of ${change.path} to ${t.owner}/${t.repo}@${change.branch}`, signal, (request) =>
      this.octokit.repos.createOrUpdateFileContents({
        ...t,
        path: change.path,
        message: change.message,
        content: Buffer.from(change.text, 'utf8').toString('base64'),
        branch: change.branch,
        sha: change.sha,
        request,
      }),
    );
  }

  async deleteFile(t: Target, change: { path: string; branch: string; message: string; sha: string }, signal?: AbortSignal): Promise<void> {
    await this.call(`deleting ${change.path} in ${t.owner}/${t.repo}@${change.branch}`, signal, (request) =>
      this.octokit.repos.deleteFile({ ...t, ...change, request }),
    );
  }

  async openPullRequest(
    t: Target,
    pr: { title: string; body: string; head: string; base: string },
    signal?: AbortSignal,
  ): Promise<{ url: string; number: number }> {
    const { data } = await this.call(`a pull request in ${t.owner}/${t.repo}`, signal, (request) => this.octokit.pulls.create({ ...t, ...pr, request }));
    return { url: data.html_url, number: data.number };
  }

  private async call<T>(what: string, signal: AbortSignal | undefined, fn: (request: { signal: AbortSignal }) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const timeout = AbortSignal.timeout(GITHUB_TIMEOUT_MS);
      const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
      try {
        return await fn({ signal: combined });
      } catch (error) {
        if (signal?.aborted) throw error;
        if (timeout.aborted) {
          throw new AppError('github_error', `GitHub did not answer within ${GITHUB_TIMEOUT_MS / 1000} s (reading ${what}).`);
        }
        const wait = retryDelay(error, attempt, this.policy);
        if (wait === undefined) {
          if (!(error as { response?: unknown })?.response) this.logger.warn(`GitHub unreachable at ${this.env.GITHUB_API_URL} (${what}): ${describe(error)}`);
          throw githubError(error, what, { hasToken: this.hasToken });
        }
        this.logger.warn(`GitHub: ${what} failed (${describe(error)}); retry ${attempt + 1} of ${this.policy.retries} in ${wait} ms`);
        // A stopped run ends the wait at once (rejects with an AbortError).
        await sleep(wait, undefined, { signal });
      }
    }
  }
}

/** What went wrong, for the log: GitHub's status, or the error and its cause (a socket error). */
function describe(error: unknown): string {
  const e = error as { status?: number; message?: string; response?: { status: number }; cause?: { message?: string; code?: string } };
  if (e?.response) return `status ${e.response.status}`;
  const cause = e?.cause ? ` (${e.cause.code ?? e.cause.message ?? ''})` : '';
  return `${String(e?.message ?? error)}${cause}`;
}

function decodeText(content: string, encoding: string): string | undefined {
  const bytes = encoding === 'base64' ? Buffer.from(content, 'base64') : Buffer.from(content, 'utf8');
  if (bytes.includes(0)) return undefined;
  return bytes.toString('utf8');
}

/** When GitHub's rate limit resets, from `x-ratelimit-reset` (epoch seconds). */
function resetTime(headers: Record<string, string | undefined>): Date | undefined {
  const reset = Number(headers['x-ratelimit-reset']);
  return Number.isFinite(reset) && reset > 0 ? new Date(reset * 1000) : undefined;
}

function minutesFromNow(date: Date, now: number): string {
  const minutes = Math.max(0, Math.ceil((date.getTime() - now) / 60_000));
  return minutes <= 1 ? 'in about a minute' : `in about ${minutes} minutes`;
}

/**
 * GitHub's failures as `github_error`s that say what happened and what to do: 404 (missing or
 * private), 401 (bad token), 403/429 with `x-ratelimit-remaining: 0` (when it resets), secondary
 * limits (`retry-after`), other refusals, 5xx, and no answer at all.
 */
export function githubError(error: unknown, what: string, context: { hasToken: boolean; now?: number }): AppError {
  const e = error as OctokitLikeError;
  const status = e?.response?.status ?? (typeof e?.status === 'number' ? e.status : undefined);
  const headers = e?.response?.headers ?? {};
  const data = e?.response?.data as { message?: unknown } | undefined;
  const upstream = typeof data?.message === 'string' ? data.message.slice(0, 200) : '';
  if (!e?.response) {
    // The address and the socket error are for the log (the caller logs them), not for the user.
    return new AppError('github_error', `GitHub could not be reached (reading ${what}); try again later.`);
  }
  if (status === 404) {
    const hint = context.hasToken ? 'check the URL, or whether GITHUB_TOKEN may read it' : 'check the URL; a private repository needs a GITHUB_TOKEN';
    return new AppError('github_error', `GitHub: ${what} was not found (404 Not Found); ${hint}.`, { github_status: 404 });
  }
  if (status === 401) {
    return new AppError('github_error', `GitHub refused the token (401 ${upstream || 'Bad credentials'}); check GITHUB_TOKEN.`, { github_status: 401 });
  }
  if ((status === 403 || status === 429) && headers['x-ratelimit-remaining'] === '0') {
    const reset = resetTime(headers);
    const limit = headers['x-ratelimit-limit'];
    const per = limit ? ` (${limit} requests an hour${context.hasToken ? '' : ' without a token'})` : '';
    const when = reset ? `; it resets at ${reset.toISOString()} (${minutesFromNow(reset, context.now ?? Date.now())})` : '';
    const advice = context.hasToken ? '' : '. A GITHUB_TOKEN raises the limit to 5,000 an hour';
    return new AppError('github_error', `GitHub's API rate limit is used up${per}${when}${advice}.`, {
      github_status: status,
      ...(reset ? { reset_at: reset.toISOString() } : {}),
    });
  }
  const secondary = secondaryLimitWait(status, headers, upstream);
  if (secondary !== undefined) {
    return new AppError('github_error', `GitHub's secondary rate limit was hit; retry after ${secondary} s.`, { github_status: status });
  }
  if (status === 403) {
    return new AppError('github_error', `GitHub refused access to ${what} (403${upstream ? `: ${upstream}` : ''}).`, { github_status: status });
  }
  if (status !== undefined && status >= 500) {
    return new AppError('github_error', `GitHub failed while reading ${what} (${status}); try again later.`, { github_status: status });
  }
  return new AppError('github_error', `GitHub answered ${status} for ${what}${upstream ? `: ${upstream}` : ''}.`, { github_status: status });
}

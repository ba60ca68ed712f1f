import { BeforeApplicationShutdown, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { RateLimits } from '../auth/rate-limits';
import { AppError } from '../common/app-error';
import { Environment } from '../config/environment';
import { StopRegistry } from '../generation/stop.registry';
import { LlmProvider, LlmRequest } from '../llm/llm.provider';
import { SolverRunChanges, SolverRunRow, SolverRunsRepository } from '../storage/solver-runs.repository';
import { ConnectionRegistry } from '../transport/connection-registry';
import { Fanout } from '../transport/fanout';
import { Frame } from '../transport/frames';
import { SolveDto } from './dto/solve.dto';
import { GithubClient, RepoFile, RepoInfo } from './github.client';
import { issueLabel, parseIssueUrl } from './issue-url';
import { ApplyResult, applyDiff, explanationOf, extractDiff, FileOutcome, pathsOfDiff } from './patch';
import {
  filesMessages,
  IssueContext,
  issueText,
  MAX_SELECTED_FILES,
  parseFilesReply,
  repairMessages,
  SourceFile,
  solutionMessages,
} from './prompts';
import { buildRepoMap, extractDeclarations, keywordsOf, languageOf, mappableFiles, relevance, TreeEntry } from './repo-map';
import { RunEnded, SolverRun, SolverStage } from './solver-run';

/** Source files whose declarations are read for the map (one GitHub request each). */
const DECLARATION_READS_WITH_TOKEN = 40;
/** Without a token GitHub allows 60 requests an hour: read fewer. */
const DECLARATION_READS_WITHOUT_TOKEN = 12;
const GITHUB_CONCURRENCY = 4;
/** A file bigger than this is not shown to the model whole, so it is not shown at all. */
const MAX_SHOWN_FILE_CHARS = 200_000;
const MAX_SUMMARY_CHARS = 2_000;

interface Outcome {
  summary: string;
  files: string[];
  patch: string;
  applies: boolean;
  prUrl?: string;
  prError?: string;
}

interface Answer {
  content: string;
  reasoning: string;
}

/**
 * Turns a GitHub issue into a checked patch: issue → repository map → files → solution → verify →
 * (pull request) → complete, streaming its frames to the run's room. Runs are jobs like generations:
 * the socket only watches; `stop` (through the StopRegistry) cancels the GitHub and model calls.
 */
@Injectable()
export class SolverService implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger(SolverService.name);
  private readonly running = new Map<string, SolverRun>();
  private accepting = true;

  constructor(
    private readonly github: GithubClient,
    private readonly llm: LlmProvider,
    private readonly runs: SolverRunsRepository,
    private readonly stops: StopRegistry,
    private readonly fanout: Fanout,
    private readonly registry: ConnectionRegistry,
    private readonly env: Environment,
    private readonly limits: RateLimits,
  ) {}

  async onModuleInit(): Promise<void> {
    // A run id that is stored but not running here has ended: `stop` of it does nothing.
    this.stops.addLookup(async (id, userId) => (await this.runs.findById(id).catch(() => undefined))?.user_id === userId);
    const count = await this.runs.interruptAllRunning();
    if (count > 0) this.logger.warn(`${count} Solver run(s) left running by the last process marked interrupted`);
  }

  get runningCount(): number {
    return this.running.size;
  }

  /** Starts a run and answers `solver_started` at once; the rest follows in the run's room. */
  solve(dto: SolveDto, connectionId: string): void {
    if (!this.accepting) throw new AppError('shutting_down', 'the server is shutting down; try again shortly');
    const ref = parseIssueUrl(dto.issue_url);
    if (!ref) throw new AppError('invalid_message', 'issue_url: must be https://github.com/OWNER/REPO/issues/N', { field: 'issue_url' });
    const userId = this.registry.userOf(connectionId).id;
    this.limits.consumeMessage(userId);
    const run = new SolverRun(randomUUID(), ref, dto.issue_url, dto.open_pr === true, dto.id, userId);
    this.running.set(run.id, run);
    run.unregisterStop = this.stops.register(run.id, userId, () => this.stop(run));
    this.registry.join(connectionId, run.room);
    this.emit(run, run.frame('solver_started', { issue_url: dto.issue_url }));
    void this.execute(run);
  }

  async listRuns(userId: string): Promise<SolverRunRow[]> {
    return this.runs.listByUser(userId);
  }

  async getRun(id: string, userId: string): Promise<SolverRunRow> {
    const row = await this.runs.findById(id);
    if (!row || row.user_id !== userId) throw new AppError('not_found', 'no such run', { run_id: id });
    return row;
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.accepting = false;
    if (this.running.size === 0) return;
    this.logger.log(`waiting up to ${this.env.DRAIN_TIMEOUT_MS} ms for ${this.running.size} Solver run(s)`);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.running.values()].map((r) => r.done)),
      new Promise((resolve) => (timer = setTimeout(resolve, this.env.DRAIN_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    const left = [...this.running.values()];
    await Promise.all(left.map((run) => this.fail(run, new AppError('shutting_down', 'the server shut down before the run finished'), 'interrupted')));
  }

  // ---- the run ----

  private async execute(run: SolverRun): Promise<void> {
    try {
      await this.runs.insert({
        id: run.id,
        user_id: run.userId,
        issue_url: run.issueUrl,
        repo: `${run.ref.owner}/${run.ref.repo}`,
        issue_number: run.ref.number,
        open_pr: run.openPr,
        request_id: run.requestId ?? null,
      });
      const outcome = await this.work(run);
      await this.complete(run, outcome);
    } catch (error) {
      if (run.ended || error instanceof RunEnded) return;
      await this.fail(run, error);
    }
  }

  private async work(run: SolverRun): Promise<Outcome> {
    const { ref, signal } = run;
    const target = { owner: ref.owner, repo: ref.repo };
    if (!this.llm.isConfigured()) {
      throw new AppError('model_not_configured', 'no model API key is configured (set DEEPSEEK_API_KEY)');
    }

    // issue
    this.progress(run, 'issue', 2, `reading ${issueLabel(ref)}`);
    const [repo, issue] = await Promise.all([this.github.repository(target, signal), this.github.issue(target, ref.number, signal)]);
    const comments = issue.comments > 0 ? await this.github.comments(target, ref.number, 30, signal) : [];
    run.throwIfEnded();
    const context: IssueContext = { ref, issue, comments };
    const issueBody = issueText(context);
    void this.save(run, { issue_title: issue.title });
    this.progress(run, 'issue', 10, `"${issue.title}" (${issue.state}, ${comments.length} comment(s))`);

    // repomap
    this.progress(run, 'repomap', 12, `reading the tree of ${repo.fullName}@${repo.defaultBranch}`);
    const tree = await this.github.tree(target, repo.defaultBranch, signal);
    const blobs = new Map(tree.entries.filter((e) => e.type === 'blob').map((e) => [e.path, e]));
    run.paths = new Set(blobs.keys());
    const keywords = keywordsOf(issueBody);
    const score = (entry: TreeEntry) => relevance(entry, keywords, issueBody);
    const mappable = mappableFiles(tree.entries);
    const toRead = mappable
      .filter((e) => languageOf(e.path))
      .sort((a, b) => score(b) - score(a))
      .slice(0, this.github.hasToken ? DECLARATION_READS_WITH_TOKEN : DECLARATION_READS_WITHOUT_TOKEN);
    this.progress(run, 'repomap', 15, `${blobs.size} files; reading declarations of ${toRead.length}`);
    const declarations = new Map<string, string[]>();
    await eachLimited(toRead, GITHUB_CONCURRENCY, async (entry) => {
      const text = await this.github.blob(target, entry.sha, signal);
      if (text !== undefined) declarations.set(entry.path, extractDeclarations(entry.path, text));
    });
    run.throwIfEnded();
    const map = buildRepoMap({ tree: tree.entries, truncated: tree.truncated, declarations, score, budgetTokens: this.mapBudget() });
    const left = map.omitted ? `, ${map.omitted} left out for the token budget` : '';
    const cut = tree.truncated ? '; GitHub truncated the tree' : '';
    this.progress(run, 'repomap', 25, `mapped ${map.listed} files in ~${map.tokens} tokens (${map.skipped} vendored, binary or generated skipped${left})${cut}`);

    // files
    this.progress(run, 'files', 27, 'asking the model which files matter');
    const reply = await this.ask(run, { messages: filesMessages(issueBody, map.text, repo.defaultBranch), responseFormat: 'json_object' }, false);
    const mappablePaths = new Set(mappable.map((e) => e.path));
    const readable = (path: string) => mappablePaths.has(path);
    let chosen = unique(parseFilesReply(reply.content).map(normalizePath)).filter(readable).slice(0, MAX_SELECTED_FILES);
    let how = 'the model chose';
    if (!chosen.length) {
      chosen = [...mappable].sort((a, b) => score(b) - score(a)).slice(0, 3).map((e) => e.path);
      how = 'the model named no existing file; best matches of the map';
    }
    if (!chosen.length) throw new AppError('github_error', `${repo.fullName} has no readable source files on ${repo.defaultBranch}`);
    run.filesRead = chosen;
    this.progress(run, 'files', 40, `${how}: ${chosen.join(', ')}`);

    // solution
    this.progress(run, 'solution', 42, `reading ${chosen.length} file(s)`);
    const sources = new Map<string, RepoFile>();
    await eachLimited(chosen, GITHUB_CONCURRENCY, async (path) => {
      const file = await this.github.file(target, path, repo.defaultBranch, signal);
      if (file) sources.set(path, file);
    });
    run.throwIfEnded();
    const { shown, notes } = this.fitFiles(chosen, sources, issueBody.length);
    this.progress(run, 'solution', 48, `writing the fix from ${shown.length} file(s)`);
    const messages = solutionMessages(issueBody, shown, notes);
    const first = await this.ask(run, { messages }, true);

    // verify
    this.progress(run, 'verify', 75, 'checking that the diff applies');
    let answer = first.content;
    let diff = extractDiff(answer);
    run.patch = diff ?? '';
    let result = await this.check(run, target, repo, diff, blobs, sources);
    if (!result.applies) {
      this.progress(run, 'verify', 78, `the diff does not apply (${result.reasons[0]}); asking for one repair`);
      this.emit(run, run.piece('solution', '\n\n---\n\n'));
      run.solution = '';
      const repaired = await this.ask(run, { messages: repairMessages(messages, first.content, result.reasons) }, true);
      const repairedDiff = extractDiff(repaired.content);
      if (repairedDiff) {
        answer = repaired.content;
        diff = repairedDiff;
        run.patch = diff;
        this.progress(run, 'verify', 82, 'checking the repaired diff');
        result = await this.check(run, target, repo, diff, blobs, sources);
      }
    }
    const changed = result.files.filter((f) => f.ok);
    const fuzzy = changed.some((f) => f.fuzzy);
    const patch = result.applies ? result.patch : (diff ?? '');
    run.patch = patch;
    this.progress(
      run,
      'verify',
      88,
      result.applies
        ? `the patch applies to ${changed.map((f) => f.path).join(', ')}${fuzzy ? ' (placed with tolerant matching, re-made clean)' : ''}`
        : `the patch does not apply: ${result.reasons.join('; ')}`,
    );
    const files = result.applies ? changed.map((f) => f.path) : diff ? pathsOfDiff(diff, (p) => blobs.has(p)) : [];
    const summary = summaryOf(answer, issue.number, result);
    const outcome: Outcome = { summary, files: files.length ? files : chosen, patch, applies: result.applies };

    // pr
    if (run.openPr) await this.pullRequest(run, target, repo, issue.number, issue.title, result, blobs, outcome);
    return outcome;
  }

  /** Fetches whatever else the diff touches, then applies it. */
  private async check(
    run: SolverRun,
    target: { owner: string; repo: string },
    repo: RepoInfo,
    diff: string | undefined,
    blobs: Map<string, TreeEntry>,
    sources: Map<string, RepoFile>,
  ): Promise<ApplyResult> {
    if (diff) {
      const missing = pathsOfDiff(diff, (p) => blobs.has(p)).filter((p) => blobs.has(p) && !sources.has(p));
      await eachLimited(missing, GITHUB_CONCURRENCY, async (path) => {
        const file = await this.github.file(target, path, repo.defaultBranch, run.signal);
        if (file) sources.set(path, file);
      });
      run.throwIfEnded();
    }
    const texts = new Map([...sources].map(([path, file]) => [path, file.text]));
    return applyDiff(diff, texts);
  }

  private async pullRequest(
    run: SolverRun,
    target: { owner: string; repo: string },
    repo: RepoInfo,
    number: number,
    title: string,
    result: ApplyResult,
    blobs: Map<string, TreeEntry>,
    outcome: Outcome,
  ): Promise<void> {
    this.progress(run, 'pr', 90, 'opening a pull request');
    if (!this.github.hasToken) outcome.prError = 'no GITHUB_TOKEN is set: opening a pull request needs a token that may push';
    else if (!result.applies) outcome.prError = 'the patch does not apply, so no pull request was opened';
    else if (repo.canPush === false) outcome.prError = `the GITHUB_TOKEN may not push to ${repo.fullName}`;
    if (outcome.prError) {
      this.progress(run, 'pr', 96, outcome.prError);
      return;
    }
    const { signal } = run;
    try {
      const branch = `solver/issue-${number}-${run.id.slice(0, 8)}`;
      const head = await this.github.branchHead(target, repo.defaultBranch, signal);
      await this.github.createBranch(target, branch, head, signal);
      for (const file of result.files.filter((f) => f.ok) as FileOutcome[]) {
        const message = `Fix #${number}: ${file.deleted ? 'delete' : file.created ? 'add' : 'update'} ${file.path}`;
        const sha = blobs.get(file.path)?.sha;
        if (file.deleted && sha) await this.github.deleteFile(target, { path: file.path, branch, message, sha }, signal);
        else await this.github.putFile(target, { path: file.path, text: file.after ?? '', branch, message, sha: file.created ? undefined : sha }, signal);
      }
      const body = `${outcome.summary}\n\nCloses #${number}.\n\n_Opened by the Solver (run ${run.id}); the patch was checked to apply to \`${repo.defaultBranch}\`._`;
      const pr = await this.github.openPullRequest(target, { title: `Fix #${number}: ${title}`.slice(0, 250), body, head: branch, base: repo.defaultBranch }, signal);
      outcome.prUrl = pr.url;
      this.progress(run, 'pr', 96, `opened ${pr.url}`);
    } catch (error) {
      if (run.ended) throw new RunEnded();
      if (!(error instanceof AppError)) throw error;
      // The checked patch is still worth having: the run completes, saying why there is no PR.
      outcome.prError = error.message;
      this.progress(run, 'pr', 96, `no pull request: ${error.message}`);
    }
  }

  /** Files shown to the model, within the context budget; notes say what was left out. */
  private fitFiles(chosen: string[], sources: Map<string, RepoFile>, issueChars: number): { shown: SourceFile[]; notes: string[] } {
    let budget = Math.max(16_000, this.env.CONTEXT_TOKENS * 4 * 0.75 - issueChars);
    const shown: SourceFile[] = [];
    const notes: string[] = [];
    for (const path of chosen) {
      const file = sources.get(path);
      if (!file) {
        notes.push(`${path} is binary or not a regular file and is not shown.`);
        continue;
      }
      if (file.text.length > MAX_SHOWN_FILE_CHARS || file.text.length > budget) {
        notes.push(`${path} (${file.text.length} characters) is too large for the context and is not shown.`);
        continue;
      }
      budget -= file.text.length;
      shown.push({ path, text: file.text });
    }
    return { shown, notes };
  }

  private mapBudget(): number {
    return Math.max(500, Math.min(6000, Math.floor(this.env.CONTEXT_TOKENS / 6)));
  }

  /**
   * One model call: reasoning streams as `solver_reasoning`, content as `solver_solution` when asked;
   * resolves with the whole answer. A stop unsubscribes, which aborts the HTTP request.
   */
  private ask(run: SolverRun, request: LlmRequest, streamSolution: boolean): Promise<Answer> {
    run.throwIfEnded();
    return new Promise<Answer>((resolve, reject) => {
      let content = '';
      let reasoning = '';
      let complete = false;
      const onAbort = () => {
        subscription.unsubscribe();
        reject(new RunEnded());
      };
      const done = () => run.signal.removeEventListener('abort', onAbort);
      const subscription = this.llm.stream(request).subscribe({
        next: (event) => {
          if (run.ended) return;
          switch (event.type) {
            case 'reasoning':
              reasoning += event.text;
              this.emit(run, run.piece('reasoning', event.text));
              break;
            case 'content':
              content += event.text;
              if (streamSolution) {
                run.solution += event.text;
                this.emit(run, run.piece('solution', event.text));
              }
              break;
            case 'usage':
              run.addUsage(event.usage);
              break;
            case 'finish':
              complete = event.complete;
              break;
          }
        },
        error: (error: unknown) => {
          done();
          reject(error);
        },
        complete: () => {
          done();
          if (complete) resolve({ content, reasoning });
          else reject(new AppError('upstream_interrupted', "the model's answer was cut short"));
        },
      });
      if (!subscription.closed) run.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  // ---- ending, exactly once ----

  private stop(run: SolverRun): void {
    if (run.ended) return;
    const patch = run.patch || extractDiff(run.solution) || '';
    const paths = patch ? pathsOfDiff(patch, (p) => run.paths?.has(p) ?? false) : [];
    void this.end(run, 'stopped', {
      summary: `Stopped during the ${run.stage} stage.`,
      files: paths.length ? paths : run.filesRead,
      patch,
      applies: false,
    });
  }

  private async complete(run: SolverRun, outcome: Outcome): Promise<void> {
    if (run.ended) return;
    this.progress(run, 'complete', 100, outcome.applies ? 'done: the patch applies' : 'done: the patch does not apply');
    await this.end(run, 'complete', outcome);
  }

  /** Cancels what runs, stores the final state, then sends `solver_complete` (the run's last frame). */
  private async end(run: SolverRun, status: 'complete' | 'stopped', outcome: Outcome): Promise<void> {
    if (!this.close(run)) return;
    await this.save(run, {
      status,
      summary: outcome.summary,
      files: JSON.stringify(outcome.files),
      patch: outcome.patch,
      applies: outcome.applies ? 1 : 0,
      pr_url: outcome.prUrl ?? null,
      error_message: outcome.prError ?? null,
    });
    const frame = run.frame('solver_complete', {
      status,
      summary: outcome.summary,
      files: outcome.files,
      patch: outcome.patch,
      applies: outcome.applies,
    });
    if (outcome.prUrl) frame.pr_url = outcome.prUrl;
    if (outcome.prError) frame.pr_error = outcome.prError;
    this.fanout.publish(run.room, frame);
    run.resolveDone();
  }

  /** Ends a run with an `error` frame carrying its `run_id` (and the `solve`'s `id`). */
  private async fail(run: SolverRun, error: unknown, status: 'error' | 'interrupted' = 'error'): Promise<void> {
    if (!this.close(run)) return;
    const appError = error instanceof AppError ? error : new AppError('internal', 'the Solver failed unexpectedly');
    if (!(error instanceof AppError)) this.logger.error(`run ${run.id}: ${(error as Error)?.stack ?? String(error)}`);
    await this.save(run, { status, error_code: appError.code, error_message: appError.message });
    this.fanout.publish(run.room, { ...run.frame('error'), code: appError.code, message: appError.message, ...appError.details, run_id: run.id });
    run.resolveDone();
  }

  /** Marks the run ended and cancels its calls; false when it had already ended. */
  private close(run: SolverRun): boolean {
    if (run.ended) return false;
    run.ended = true;
    run.controller.abort();
    run.unregisterStop?.();
    this.running.delete(run.id);
    return true;
  }

  // ---- frames and records ----

  private progress(run: SolverRun, stage: SolverStage, progress: number, message: string): void {
    if (run.ended) return;
    this.emit(run, run.progressFrame(stage, progress, message));
    void this.save(run, { stage: run.stage, progress: run.progress, stages: JSON.stringify(run.stages) });
  }

  private emit(run: SolverRun, frame: Frame): void {
    if (!run.ended) this.fanout.publish(run.room, frame);
  }

  /** Writes to the run's row; a failed write is logged, never fatal (the frames are the contract). */
  private async save(run: SolverRun, changes: SolverRunChanges): Promise<void> {
    try {
      await this.runs.update(run.id, { ...changes, ...(run.usageSeen ? { usage: JSON.stringify(run.usage) } : {}) });
    } catch (error) {
      this.logger.warn(`could not store run ${run.id}: ${String(error)}`);
    }
  }
}

function normalizePath(path: string): string {
  return path.trim().replace(/^\.\//, '').replace(/^\/+/, '');
}

function unique<T>(items: T[]): T[] {
  return [...new Set(items)];
}

function summaryOf(answer: string, number: number, result: ApplyResult): string {
  const text = explanationOf(answer).trim();
  if (text) return text.length > MAX_SUMMARY_CHARS ? `${text.slice(0, MAX_SUMMARY_CHARS - 1)}…` : text;
  return result.applies ? `A patch for #${number}.` : `No patch that applies was found for #${number}.`;
}

/** Runs `fn` over items with at most `limit` at once; the first failure rejects. */
async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}


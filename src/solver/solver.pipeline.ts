import { Injectable } from '@nestjs/common';
import { AppError } from '../common/app-error';
import { Environment } from '../config/environment';
import { LlmMessage, LlmProvider, LlmRequest } from '../llm/llm.provider';
import { SolverRunChanges } from '../storage/solver-runs.repository';
import { Frame } from '../transport/frames';
import { GithubClient, IssueInfo, RepoFile, RepoInfo } from './github.client';
import { issueLabel } from './issue-url';
import { ApplyResult, applyDiff, changedFiles, explanationOf, extractDiff, pathsOfDiff } from './patch';
import { ciRunReason, repoPatterns, repoRefusal } from './pr-policy';
import { filesMessages, issueText, MAX_SELECTED_FILES, parseFilesReply, repairMessages, SourceFile, solutionMessages } from './prompts';
import { DeclarationReader } from './declaration-reader';
import { hasDeclarations } from './declarations';
import { buildRepoMap, keywordsOf, mappableFiles, relevance, TreeEntry } from './repo-map';
import { RunEnded, SolverRun, SolverStage } from './solver-run';

/** Source files whose declarations are read for the map (one GitHub request each). */
const DECLARATION_READS_WITH_TOKEN = 40;
/** Without a token GitHub allows 60 requests an hour: read fewer. */
const DECLARATION_READS_WITHOUT_TOKEN = 12;
const GITHUB_CONCURRENCY = 4;
/** A file bigger than this is not shown to the model whole, so it is not shown at all. */
const MAX_SHOWN_FILE_CHARS = 200_000;
const MAX_SUMMARY_CHARS = 2_000;

/** How the stages report: frames to the run's viewers, progress (sent and stored), row updates. */
export interface RunChannel {
  progress(stage: SolverStage, progress: number, message: string): void;
  emit(frame: Frame): void;
  save(changes: SolverRunChanges): void;
}

export interface Outcome {
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

/** What the stages of one run learn and pass on. */
interface Job {
  run: SolverRun;
  io: RunChannel;
  target: { owner: string; repo: string };
  repo: RepoInfo;
  issue: IssueInfo;
  /** The issue and its comments as the model reads them. */
  issueBody: string;
  /** Blobs of the default branch by path. */
  blobs: Map<string, TreeEntry>;
  /** Blobs worth showing (not vendored, binary, generated or huge). */
  mappable: TreeEntry[];
  score: (entry: TreeEntry) => number;
  /** Files read so far, by path. */
  sources: Map<string, RepoFile>;
}

/**
 * The stages of a run — issue → repomap → files → solution → verify → (pr) — on GitHub and the model.
 * It reports through a RunChannel and ends nothing itself: SolverService owns the run's life.
 */
@Injectable()
export class SolverPipeline {
  constructor(
    private readonly github: GithubClient,
    private readonly llm: LlmProvider,
    private readonly env: Environment,
    private readonly declarationReader: DeclarationReader,
  ) {}

  /** Runs the stages; resolves with what `solver_complete` reports. */
  async run(run: SolverRun, io: RunChannel): Promise<Outcome> {
    if (!this.llm.isConfigured()) {
      throw new AppError('model_not_configured', 'no model API key is configured (set DEEPSEEK_API_KEY)');
    }
    const job = await this.readIssue(run, io);
    const map = await this.mapRepository(job);
    const chosen = await this.chooseFiles(job, map);
    const { messages, first } = await this.writeSolution(job, chosen);
    const { result, answer, diff } = await this.verify(job, messages, first);

    const changed = changedFiles(result);
    const files = result.applies ? changed.map((f) => f.path) : diff ? pathsOfDiff(diff, (p) => job.blobs.has(p)) : [];
    const outcome: Outcome = {
      summary: summaryOf(answer, job.issue.number, result),
      files: files.length ? files : chosen,
      patch: result.applies ? result.patch : (diff ?? ''),
      applies: result.applies,
    };
    if (run.openPr) await this.pullRequest(job, result, outcome);
    return outcome;
  }

  /** Stage `issue`: the repository (default branch), the issue and its comments. */
  private async readIssue(run: SolverRun, io: RunChannel): Promise<Job> {
    const { ref, signal } = run;
    const target = { owner: ref.owner, repo: ref.repo };
    io.progress('issue', 2, `reading ${issueLabel(ref)}`);
    const [repo, issue] = await Promise.all([this.github.repository(target, signal), this.github.issue(target, ref.number, signal)]);
    const comments = issue.comments > 0 ? await this.github.comments(target, ref.number, 30, signal) : [];
    run.throwIfEnded();
    io.save({ issue_title: issue.title });
    io.progress('issue', 10, `"${issue.title}" (${issue.state}, ${comments.length} comment(s))`);
    return { run, io, target, repo, issue, issueBody: issueText({ ref, issue, comments }), blobs: new Map(), mappable: [], score: () => 0, sources: new Map() };
  }

  /** Stage `repomap`: the recursive tree, declarations of the most relevant sources, the budgeted map. */
  private async mapRepository(job: Job): Promise<string> {
    const { run, io, target, repo } = job;
    io.progress('repomap', 12, `reading the tree of ${repo.fullName}@${repo.defaultBranch}`);
    const tree = await this.github.tree(target, repo.defaultBranch, run.signal);
    job.blobs = new Map(tree.entries.filter((e) => e.type === 'blob').map((e) => [e.path, e]));
    run.paths = new Set(job.blobs.keys());
    const keywords = keywordsOf(job.issueBody);
    job.score = (entry) => relevance(entry, keywords, job.issueBody);
    job.mappable = mappableFiles(tree.entries);
    const toRead = job.mappable
      .filter((e) => hasDeclarations(e.path))
      .sort((a, b) => job.score(b) - job.score(a))
      .slice(0, this.github.hasToken ? DECLARATION_READS_WITH_TOKEN : DECLARATION_READS_WITHOUT_TOKEN);
    io.progress('repomap', 15, `${job.blobs.size} files; reading declarations of ${toRead.length}`);
    const declarations = new Map<string, string[]>();
    let gaveUp = 0;
    await eachLimited(toRead, GITHUB_CONCURRENCY, async (entry) => {
      const text = await this.github.blob(target, entry.sha, run.signal);
      if (text === undefined || run.ended) return;
      // In a worker thread with a time budget: a hostile file cannot hold the event loop.
      const found = await this.declarationReader.read(entry.path, text);
      if (found) declarations.set(entry.path, found);
      else gaveUp += 1;
    });
    run.throwIfEnded();
    const map = buildRepoMap({ tree: tree.entries, truncated: tree.truncated, declarations, score: job.score, budgetTokens: this.mapBudget() });
    const left = map.omitted ? `, ${map.omitted} left out for the token budget` : '';
    const cut = tree.truncated ? '; GitHub truncated the tree' : '';
    const slow = gaveUp ? `; declarations of ${gaveUp} file(s) left out (over the time budget)` : '';
    io.progress(
      'repomap',
      25,
      `mapped ${map.listed} files in ~${map.tokens} tokens (${map.skipped} vendored, binary or generated skipped${left})${cut}${slow}`,
    );
    return map.text;
  }

  /** Stage `files`: the model picks paths in JSON mode; only existing, mappable ones are kept. */
  private async chooseFiles(job: Job, map: string): Promise<string[]> {
    const { run, io, repo } = job;
    io.progress('files', 27, 'asking the model which files matter');
    const reply = await this.ask(job, { messages: filesMessages(job.issueBody, map, repo.defaultBranch), responseFormat: 'json_object' }, false);
    const mappable = new Set(job.mappable.map((e) => e.path));
    let chosen = unique(parseFilesReply(reply.content).map(normalizePath))
      .filter((p) => mappable.has(p))
      .slice(0, MAX_SELECTED_FILES);
    let how = 'the model chose';
    if (!chosen.length) {
      chosen = [...job.mappable]
        .sort((a, b) => job.score(b) - job.score(a))
        .slice(0, 3)
        .map((e) => e.path);
      how = 'the model named no existing file; best matches of the map';
    }
    if (!chosen.length) throw new AppError('github_error', `${repo.fullName} has no readable source files on ${repo.defaultBranch}`);
    run.filesRead = chosen;
    io.progress('files', 40, `${how}: ${chosen.join(', ')}`);
    return chosen;
  }

  /** Stage `solution`: the chosen files' text, then the model's explanation and diff, streamed. */
  private async writeSolution(job: Job, chosen: string[]): Promise<{ messages: LlmMessage[]; first: Answer }> {
    const { run, io, target, repo } = job;
    io.progress('solution', 42, `reading ${chosen.length} file(s)`);
    await eachLimited(chosen, GITHUB_CONCURRENCY, async (path) => {
      const file = await this.github.file(target, path, repo.defaultBranch, run.signal);
      if (file) job.sources.set(path, file);
    });
    run.throwIfEnded();
    const { shown, notes } = this.fitFiles(chosen, job.sources, job.issueBody.length);
    io.progress('solution', 48, `writing the fix from ${shown.length} file(s)`);
    const messages = solutionMessages(job.issueBody, shown, notes);
    return { messages, first: await this.ask(job, { messages }, true) };
  }

  /** Stage `verify`: apply the diff; when it does not apply, one repair round that says why. */
  private async verify(job: Job, messages: LlmMessage[], first: Answer): Promise<{ result: ApplyResult; answer: string; diff?: string }> {
    const { run, io } = job;
    io.progress('verify', 75, 'checking that the diff applies');
    let answer = first.content;
    let diff = extractDiff(answer);
    run.patch = diff ?? '';
    let result = await this.check(job, diff);
    if (!result.applies) {
      io.progress('verify', 78, `the diff does not apply (${result.reasons[0]}); asking for one repair`);
      io.emit(run.piece('solution', '\n\n---\n\n'));
      run.solution = '';
      const repaired = await this.ask(job, { messages: repairMessages(messages, first.content, result.reasons) }, true);
      const repairedDiff = extractDiff(repaired.content);
      if (repairedDiff) {
        answer = repaired.content;
        diff = repairedDiff;
        run.patch = diff;
        io.progress('verify', 82, 'checking the repaired diff');
        result = await this.check(job, diff);
      }
    }
    run.checkedPatch = result.applies ? result.patch : (diff ?? '');
    const changed = changedFiles(result);
    const fuzzy = changed.some((f) => f.fuzzy);
    io.progress(
      'verify',
      88,
      result.applies
        ? `the patch applies to ${changed.map((f) => f.path).join(', ')}${fuzzy ? ' (placed with tolerant matching, re-made clean)' : ''}`
        : `the patch does not apply: ${result.reasons.join('; ')}`,
    );
    return { result, answer, diff };
  }

  /** Fetches whatever else the diff touches, then applies it. */
  private async check(job: Job, diff: string | undefined): Promise<ApplyResult> {
    const { run, target, repo, blobs, sources } = job;
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

  /** Stage `pr`: a branch, one commit per changed file, a pull request. A failure here is not fatal. */
  private async pullRequest(job: Job, result: ApplyResult, outcome: Outcome): Promise<void> {
    const { run, io, target, repo, issue, blobs } = job;
    io.progress('pr', 90, 'opening a pull request');
    const changed = changedFiles(result);
    // Files CI or a build runs are never pushed: the issue that steered the model is anyone's.
    const ciRun = changed.map(ciRunReason).find(Boolean);
    const names = unique([`${target.owner}/${target.repo}`, repo.fullName]);
    outcome.prError =
      run.prRefusal ??
      repoRefusal(repoPatterns(this.env.SOLVER_PR_REPOS), names) ??
      (!this.github.hasToken ? 'no GITHUB_TOKEN is set: opening a pull request needs a token that may push' : undefined) ??
      (!result.applies ? 'the patch does not apply, so no pull request was opened' : undefined) ??
      (ciRun ? `${ciRun}; the Solver never pushes such changes (the patch is shown for a person to apply)` : undefined) ??
      (repo.canPush === false ? `the GITHUB_TOKEN may not push to ${repo.fullName}` : undefined);
    if (outcome.prError) {
      io.progress('pr', 96, outcome.prError);
      return;
    }
    const { signal } = run;
    try {
      const branch = `solver/issue-${issue.number}-${run.id.slice(0, 8)}`;
      const head = await this.github.branchHead(target, repo.defaultBranch, signal);
      await this.github.createBranch(target, branch, head, signal);
      for (const file of changed) {
        const message = `Fix #${issue.number}: ${file.deleted ? 'delete' : file.created ? 'add' : 'update'} ${file.path}`;
        const sha = blobs.get(file.path)?.sha;
        if (file.deleted && sha) await this.github.deleteFile(target, { path: file.path, branch, message, sha }, signal);
        else await this.github.putFile(target, { path: file.path, text: file.after ?? '', branch, message, sha: file.created ? undefined : sha }, signal);
      }
      const body = `${outcome.summary}\n\nCloses #${issue.number}.\n\n_Opened by the Solver (run ${run.id}); the patch was checked to apply to \`${repo.defaultBranch}\`._`;
      const title = `Fix #${issue.number}: ${issue.title}`.slice(0, 250);
      const pr = await this.github.openPullRequest(target, { title, body, head: branch, base: repo.defaultBranch }, signal);
      outcome.prUrl = pr.url;
      io.progress('pr', 96, `opened ${pr.url}`);
    } catch (error) {
      if (run.ended) throw new RunEnded();
      if (!(error instanceof AppError)) throw error;
      // The checked patch is still worth having: the run completes, saying why there is no PR.
      outcome.prError = error.message;
      io.progress('pr', 96, `no pull request: ${error.message}`);
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
  private ask({ run, io }: Job, request: LlmRequest, streamSolution: boolean): Promise<Answer> {
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
              io.emit(run.piece('reasoning', event.text));
              break;
            case 'content':
              content += event.text;
              if (streamSolution) {
                run.solution += event.text;
                io.emit(run.piece('solution', event.text));
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

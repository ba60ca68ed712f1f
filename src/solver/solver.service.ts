import { BeforeApplicationShutdown, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { RateLimits } from '../auth/rate-limits';
import { AppError } from '../common/app-error';
import { Environment } from '../config/environment';
import { RunningJobs } from '../generation/running-jobs';
import { StopRegistry } from '../generation/stop.registry';
import { SolverRunChanges, SolverRunRecord, SolverRunsRepository } from '../storage/solver-runs.repository';
import { UsersRepository } from '../storage/users.repository';
import { ConnectionRegistry } from '../transport/connection-registry';
import { Fanout } from '../transport/fanout';
import { Frame } from '../transport/frames';
import { SolveDto } from './dto/solve.dto';
import { parseIssueUrl } from './issue-url';
import { prRefusalFor } from './pr-policy';
import { extractDiff, pathsOfDiff } from './patch';
import { WatchRunDto } from './dto/watch-run.dto';
import { RunEnded, runFrame, runRoom, SolverRun, SolverStage } from './solver-run';
import { Outcome, RunChannel, SolverPipeline } from './solver.pipeline';

/**
 * The life of Solver runs: start (`solver_started` at once), the stages (SolverPipeline) streaming
 * to the run's room, and one end — `solver_complete` (complete or stopped) or an `error` with the
 * `run_id`. Runs are jobs like generations: the socket only watches; `stop` (through the
 * StopRegistry) aborts the GitHub and model calls.
 */
@Injectable()
export class SolverService implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger(SolverService.name);
  private readonly running: RunningJobs<SolverRun>;
  /** The pending row writes of each run, chained so they land in order. */
  private readonly writes = new Map<string, Promise<void>>();

  constructor(
    private readonly pipeline: SolverPipeline,
    private readonly runs: SolverRunsRepository,
    private readonly stops: StopRegistry,
    private readonly fanout: Fanout,
    private readonly registry: ConnectionRegistry,
    private readonly env: Environment,
    private readonly limits: RateLimits,
    private readonly users: UsersRepository,
  ) {
    this.running = new RunningJobs(stops);
  }

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
  async solve(dto: SolveDto, connectionId: string): Promise<void> {
    this.running.assertAccepting();
    const ref = parseIssueUrl(dto.issue_url);
    if (!ref) throw new AppError('invalid_message', 'issue_url: must be https://github.com/OWNER/REPO/issues/N', { field: 'issue_url' });
    const userId = this.registry.userOf(connectionId).id;
    this.assertRunAllowance(userId);
    await this.limits.consumeMessage(userId);
    const run = new SolverRun(randomUUID(), ref, dto.issue_url, dto.open_pr === true, dto.id, userId);
    if (run.openPr) run.prRefusal = prRefusalFor(this.env.SOLVER_PR, await this.isAdmin(userId));
    // Again after the awaits: solves sent back to back all passed the first check before any was running.
    this.assertRunAllowance(userId);
    this.running.add(run.id, userId, run, () => this.stop(run));
    await this.fanout.join(connectionId, run.room);
    run.started = run.frame('solver_started', { issue_url: dto.issue_url });
    this.emit(run, run.started);
    void this.execute(run);
  }

  /**
   * `solver_watch`: this socket follows a run of its user. Running here: its catch-up (started, the
   * current progress, the pieces after `after_seq`, the end if it came meanwhile), then live. Ended
   * or running on another instance: what its row holds (started, the last progress, and the end of
   * an ended run); a run still running elsewhere continues live through the run's room.
   */
  async watch(dto: WatchRunDto, connectionId: string): Promise<void> {
    const userId = this.registry.userOf(connectionId).id;
    const run = this.running.get(dto.run_id);
    if (run && run.userId !== userId) throw new AppError('not_found', 'no such run', { run_id: dto.run_id });
    const row = run ? undefined : await this.getRun(dto.run_id, userId);
    // Live frames of the run wait while the catch-up goes out.
    this.registry.hold(connectionId, dto.run_id);
    let caughtUp = false;
    try {
      if (run) {
        await this.fanout.join(connectionId, run.room);
        // Taken now, the catch-up holds every frame the run sent so far: what waited is dropped.
        for (const frame of run.catchUp(dto.after_seq ?? 0)) this.registry.sendReplay(connectionId, frame);
        caughtUp = true;
        return;
      }
      const stored = row!;
      if (stored.status === 'running') await this.fanout.join(connectionId, runRoom(stored.id));
      for (const frame of storedRunFrames(stored)) this.registry.sendReplay(connectionId, frame);
    } finally {
      this.registry.release(connectionId, dto.run_id, !caughtUp);
    }
  }

  /** SOLVER_MAX_RUNS_PER_USER: one more run at once is `limit_exceeded`. */
  private assertRunAllowance(userId: string): void {
    const max = this.env.SOLVER_MAX_RUNS_PER_USER;
    if (this.running.countFor(userId) >= max) {
      throw new AppError('limit_exceeded', `at most ${max} Solver run(s) at once per user (SOLVER_MAX_RUNS_PER_USER); wait for one to finish or stop it`, {
        limit: 'solver_runs',
        max,
      });
    }
  }

  /** With AUTH_MODE=none the single user is the admin; otherwise the account says (read now, not at login). */
  private async isAdmin(userId: string): Promise<boolean> {
    if (this.env.AUTH_MODE === 'none') return true;
    return (await this.users.findById(userId))?.is_admin === 1;
  }

  async listRuns(userId: string): Promise<SolverRunRecord[]> {
    return this.runs.listByUser(userId);
  }

  async getRun(id: string, userId: string): Promise<SolverRunRecord> {
    const row = await this.runs.findById(id);
    if (!row || row.user_id !== userId) throw new AppError('not_found', 'no such run', { run_id: id });
    return row;
  }

  async beforeApplicationShutdown(): Promise<void> {
    if (this.running.size) this.logger.log(`waiting up to ${this.env.DRAIN_TIMEOUT_MS} ms for ${this.running.size} Solver run(s)`);
    const left = await this.running.drain(this.env.DRAIN_TIMEOUT_MS);
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
      const outcome = await this.pipeline.run(run, this.channel(run));
      await this.complete(run, outcome);
    } catch (error) {
      if (run.ended || error instanceof RunEnded) return;
      await this.fail(run, error);
    }
  }

  // ---- ending, exactly once ----

  private stop(run: SolverRun): void {
    if (run.ended) return;
    // The checked patch, else the diff being streamed, else the last complete one.
    const patch = run.checkedPatch ?? extractDiff(run.solution) ?? run.patch;
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
      files: outcome.files,
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
    run.endFrame = frame;
    this.fanout.publish(run.room, frame);
    run.resolveDone();
  }

  /** Ends a run with an `error` frame carrying its `run_id` (and the `solve`'s `id`). */
  private async fail(run: SolverRun, error: unknown, status: 'error' | 'interrupted' = 'error'): Promise<void> {
    if (!this.close(run)) return;
    const appError = error instanceof AppError ? error : new AppError('internal', 'the Solver failed unexpectedly');
    if (!(error instanceof AppError)) this.logger.error(`run ${run.id}: ${(error as Error)?.stack ?? String(error)}`);
    await this.save(run, { status, error_code: appError.code, error_message: appError.message });
    run.endFrame = { ...run.frame('error'), code: appError.code, message: appError.message, ...appError.details, run_id: run.id };
    this.fanout.publish(run.room, run.endFrame);
    run.resolveDone();
  }

  /** Marks the run ended and cancels its calls; false when it had already ended. */
  private close(run: SolverRun): boolean {
    if (run.ended) return false;
    run.ended = true;
    run.controller.abort();
    this.running.remove(run.id, run);
    return true;
  }

  // ---- frames and records ----

  private channel(run: SolverRun): RunChannel {
    return {
      progress: (stage, progress, message) => this.progress(run, stage, progress, message),
      emit: (frame) => this.emit(run, frame),
      save: (changes) => void this.save(run, changes),
    };
  }

  private progress(run: SolverRun, stage: SolverStage, progress: number, message: string): void {
    if (run.ended) return;
    this.emit(run, run.progressFrame(stage, progress, message));
    void this.save(run, { stage: run.stage, progress: run.progress, stages: [...run.stages] });
  }

  private emit(run: SolverRun, frame: Frame): void {
    if (!run.ended) this.fanout.publish(run.room, frame);
  }

  /**
   * Writes to the run's row in the order they were made (with a PostgreSQL pool, two writes left
   * running at once may land in either order); a failed write is logged, never fatal.
   */
  private save(run: SolverRun, changes: SolverRunChanges): Promise<void> {
    const next = (this.writes.get(run.id) ?? Promise.resolve()).then(() => this.write(run, changes));
    this.writes.set(run.id, next);
    void next.then(() => {
      if (this.writes.get(run.id) === next) this.writes.delete(run.id);
    });
    return next;
  }

  private async write(run: SolverRun, changes: SolverRunChanges): Promise<void> {
    try {
      await this.runs.update(run.id, { ...changes, ...(run.usageSeen ? { usage: { ...run.usage } } : {}) });
    } catch (error) {
      this.logger.warn(`could not store run ${run.id}: ${String(error)}`);
    }
  }
}

/** A stored run as frames: `solver_started`, its last progress, and its end when it has ended. */
export function storedRunFrames(row: SolverRunRecord): Frame[] {
  const base = (type: string, fields: Record<string, unknown> = {}): Frame => runFrame(row.id, row.request_id || undefined, type, fields);
  const stages = row.stages;
  const frames = [base('solver_started', { issue_url: row.issue_url })];
  if (row.stage) frames.push(base('solver_progress', { stage: row.stage, progress: row.progress, message: stages.at(-1)?.message ?? '' }));
  if (row.status === 'complete' || row.status === 'stopped') {
    const end = base('solver_complete', {
      status: row.status,
      summary: row.summary ?? '',
      files: row.files,
      patch: row.patch ?? '',
      applies: !!row.applies,
    });
    if (row.pr_url) end.pr_url = row.pr_url;
    if (row.status === 'complete' && row.error_message) end.pr_error = row.error_message;
    frames.push(end);
  } else if (row.status !== 'running') {
    frames.push(base('error', { code: row.error_code ?? 'internal', message: row.error_message ?? `the run ended ${row.status}` }));
  }
  return frames;
}

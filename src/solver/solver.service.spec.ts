import { Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { RateLimits } from '../auth/rate-limits';
import { AppError } from '../common/app-error';
import { Environment } from '../config/environment';
import { StopRegistry } from '../generation/stop.registry';
import { SolverRunsRepository } from '../storage/solver-runs.repository';
import { ConnectionRegistry } from '../transport/connection-registry';
import { Fanout } from '../transport/fanout';
import type { Frame } from '../transport/frames';
import type { SolverRun } from './solver-run';
import { type Outcome, type RunChannel, SolverPipeline } from './solver.pipeline';
import { UsersRepository } from '../storage/users.repository';
import { SolverService } from './solver.service';

const URL = 'https://github.com/octo/calc/issues/7';
const tick = () => new Promise((resolve) => setImmediate(resolve));

/** The run's life around a scripted pipeline: stop, failures, shutdown, limits. */
describe('SolverService', () => {
  let frames: Frame[];
  let rows: Map<string, Record<string, unknown>>;
  let stops: StopRegistry;
  let pipeline: { run: jest.Mock<Promise<Outcome>, [SolverRun, RunChannel]> };
  let limits: { consumeMessage: jest.Mock };
  let service: SolverService;

  beforeAll(() => Logger.overrideLogger(false));
  beforeEach(async () => {
    frames = [];
    rows = new Map();
    stops = new StopRegistry();
    pipeline = { run: jest.fn() };
    limits = { consumeMessage: jest.fn() };
    const runs = {
      insert: async (row: { id: string }) => void rows.set(row.id, { ...row, status: 'running' }),
      update: async (id: string, changes: Record<string, unknown>) => void rows.set(id, { ...rows.get(id), ...changes }),
      findById: async (id: string) => rows.get(id),
      interruptAllRunning: async () => 0,
    };
    const fanout = { publish: (_room: string, frame: Frame) => frames.push(frame), join: async () => undefined };
    const registry = { userOf: () => ({ id: 'u1' }), join: jest.fn() };
    const module = await Test.createTestingModule({
      providers: [
        SolverService,
        { provide: SolverPipeline, useValue: pipeline },
        { provide: SolverRunsRepository, useValue: runs },
        { provide: StopRegistry, useValue: stops },
        { provide: Fanout, useValue: fanout },
        { provide: ConnectionRegistry, useValue: registry },
        { provide: Environment, useValue: { DRAIN_TIMEOUT_MS: 30, SOLVER_MAX_RUNS_PER_USER: 2, SOLVER_PR: 'admin', AUTH_MODE: 'local' } },
        { provide: RateLimits, useValue: limits },
        { provide: UsersRepository, useValue: { findById: async () => ({ is_admin: 0 }) } },
      ],
    }).compile();
    service = module.get(SolverService);
    await service.onModuleInit();
  });

  /** A pipeline step that waits until the run is aborted, like a GitHub request in flight. */
  const hangUntilAborted = (seen: { signal?: AbortSignal }) =>
    pipeline.run.mockImplementation(
      (run) =>
        new Promise((_resolve, reject) => {
          seen.signal = run.signal;
          run.signal.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' })));
        }),
    );

  it('stop while a GitHub call is in flight aborts it and ends with solver_complete stopped; a second stop does nothing', async () => {
    const seen: { signal?: AbortSignal } = {};
    hangUntilAborted(seen);
    await service.solve({ id: 'r1', issue_url: URL }, 'c1');
    await tick();
    const runId = frames[0].run_id as string;
    expect(frames[0]).toEqual({ type: 'solver_started', id: 'r1', run_id: runId, issue_url: URL });
    await expect(stops.stop(runId, 'someone-else', 'run_id')).rejects.toMatchObject({ code: 'not_found' });
    await stops.stop(runId, 'u1', 'run_id');
    await tick();
    expect(seen.signal?.aborted).toBe(true);
    expect(frames.slice(1)).toEqual([
      { type: 'solver_complete', id: 'r1', run_id: runId, status: 'stopped', summary: 'Stopped during the issue stage.', files: [], patch: '', applies: false },
    ]);
    expect(rows.get(runId)).toMatchObject({ status: 'stopped', applies: 0 });
    await stops.stop(runId, 'u1', 'run_id');
    await tick();
    expect(frames.length).toBe(2);
    expect(service.runningCount).toBe(0);
  });

  it('an unexpected failure is an internal error frame with the run_id; an AppError keeps its code and fields', async () => {
    pipeline.run.mockRejectedValueOnce(new TypeError('boom'));
    await service.solve({ issue_url: URL }, 'c1');
    await tick();
    await tick();
    expect(frames[1]).toEqual({ type: 'error', run_id: frames[0].run_id, code: 'internal', message: 'the Solver failed unexpectedly' });

    pipeline.run.mockRejectedValueOnce(new AppError('github_error', 'nope', { github_status: 404 }));
    await service.solve({ id: 'r2', issue_url: URL }, 'c1');
    await tick();
    await tick();
    expect(frames[3]).toEqual({ type: 'error', id: 'r2', run_id: frames[2].run_id, code: 'github_error', message: 'nope', github_status: 404 });
    expect(rows.get(frames[2].run_id as string)).toMatchObject({ status: 'error', error_code: 'github_error' });
  });

  it('a user has at most SOLVER_MAX_RUNS_PER_USER runs at once: one more is limit_exceeded and starts nothing', async () => {
    hangUntilAborted({});
    await service.solve({ issue_url: URL }, 'c1');
    await service.solve({ issue_url: URL }, 'c1');
    await expect(service.solve({ id: 'r3', issue_url: URL }, 'c1')).rejects.toMatchObject({
      code: 'limit_exceeded',
      details: { limit: 'solver_runs', max: 2 },
    });
    expect(frames.filter((f) => f.type === 'solver_started')).toHaveLength(2);
    expect(service.runningCount).toBe(2);
    await stops.stop(frames[0].run_id as string, 'u1', 'run_id');
    await tick();
    await service.solve({ issue_url: URL }, 'c1');
    expect(service.runningCount).toBe(2);
    await service.beforeApplicationShutdown();
  });

  it('open_pr of a user who is not the admin (SOLVER_PR=admin): the run goes on, told why it may not push', async () => {
    const seen: Array<{ openPr: boolean; prRefusal?: string }> = [];
    pipeline.run.mockImplementation(async (run) => {
      seen.push({ openPr: run.openPr, prRefusal: run.prRefusal });
      return { summary: 's', files: [], patch: '', applies: false };
    });
    await service.solve({ issue_url: URL, open_pr: true }, 'c1');
    await service.solve({ issue_url: URL }, 'c1');
    await tick();
    expect(seen).toEqual([
      { openPr: true, prRefusal: "opening pull requests is the admin's alone on this server (SOLVER_PR=admin)" },
      { openPr: false, prRefusal: undefined },
    ]);
  });

  it('a refused solve (rate limit) starts nothing', async () => {
    limits.consumeMessage.mockImplementation(() => {
      throw new AppError('rate_limited', 'too many', { retry_after_ms: 5 });
    });
    await expect(service.solve({ issue_url: URL }, 'c1')).rejects.toThrow('too many');
    expect(frames).toEqual([]);
    expect(pipeline.run).not.toHaveBeenCalled();
  });

  it('on shutdown: waits for runs up to DRAIN_TIMEOUT_MS, then ends the rest with an error; takes no new runs', async () => {
    const seen: { signal?: AbortSignal } = {};
    hangUntilAborted(seen);
    await service.solve({ issue_url: URL }, 'c1');
    await tick();
    const runId = frames[0].run_id as string;
    const started = Date.now();
    await service.beforeApplicationShutdown();
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
    expect(seen.signal?.aborted).toBe(true);
    expect(frames[frames.length - 1]).toMatchObject({ type: 'error', run_id: runId, code: 'shutting_down' });
    expect(rows.get(runId)).toMatchObject({ status: 'interrupted' });
    await expect(service.solve({ issue_url: URL }, 'c1')).rejects.toMatchObject({ code: 'shutting_down' });
  });

  it('a completed run sends progress complete/100 then solver_complete, and stores the result first', async () => {
    pipeline.run.mockImplementation(async (_run, io) => {
      io.progress('verify', 88, 'ok');
      io.progress('verify', 50, 'a lower number never goes out');
      return { summary: 'S', files: ['a.ts'], patch: 'P', applies: true, prUrl: 'https://x/pull/1' };
    });
    await service.solve({ issue_url: URL }, 'c1');
    await tick();
    await tick();
    const runId = frames[0].run_id as string;
    expect(frames.slice(1).map((f) => [f.type, f.stage, f.progress])).toEqual([
      ['solver_progress', 'verify', 88],
      ['solver_progress', 'verify', 88],
      ['solver_progress', 'complete', 100],
      ['solver_complete', undefined, undefined],
    ]);
    expect(frames[4]).toMatchObject({ status: 'complete', summary: 'S', files: ['a.ts'], patch: 'P', applies: true, pr_url: 'https://x/pull/1' });
    expect(rows.get(runId)).toMatchObject({ status: 'complete', patch: 'P', applies: 1, pr_url: 'https://x/pull/1', progress: 100 });
  });
});

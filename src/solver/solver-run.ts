import type { LlmUsage } from '../llm/llm.provider';
import type { Frame } from '../transport/frames';
import type { IssueRef } from './issue-url';

export type SolverStage = 'issue' | 'repomap' | 'files' | 'solution' | 'verify' | 'pr' | 'complete';

/** The fanout room of a run: every connection watching it. */
export const runRoom = (runId: string): string => `run:${runId}`;

/** A frame of a run: its `run_id`, and the `id` of the `solve` that started it when it had one. */
export function runFrame(runId: string, requestId: string | undefined, type: string, fields: Record<string, unknown> = {}): Frame {
  const frame: Frame = { type, run_id: runId, ...fields };
  if (requestId !== undefined) frame.id = requestId;
  return frame;
}

/** Thrown into the run's flow when it was stopped (or ended otherwise) while waiting. */
export class RunEnded extends Error {
  constructor() {
    super('run ended');
    this.name = 'RunEnded';
  }
}

export interface StageRecord {
  stage: SolverStage;
  progress: number;
  message: string;
  at: string;
}

/**
 * One Solver run's live state: its frames (one `seq` for reasoning and solution, progress that never
 * falls), what it has produced so far, and the abort signal that cancels its GitHub and model calls.
 */
export class SolverRun {
  seq = 0;
  progress = 0;
  stage: SolverStage = 'issue';
  readonly stages: StageRecord[] = [];
  /** Set once, by the first of complete / stop / failure. */
  ended = false;
  readonly controller = new AbortController();
  /** Paths given to the model (the `files` of a run without a patch). */
  filesRead: string[] = [];
  /** Text of the current solution answer, as streamed. */
  solution = '';
  /** The model's last complete diff. */
  patch = '';
  /** The run's patch once verified (clean when it applies). */
  checkedPatch?: string;
  /** Why this run's user may not open a pull request (SOLVER_PR); undefined when they may. */
  prRefusal?: string;
  /** Blob paths of the default branch, once read. */
  paths?: Set<string>;
  usage: LlmUsage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
  usageSeen = false;
  /** What a viewer joining late is sent: `solver_started`, the last `solver_progress`, every piece, the end. */
  started?: Frame;
  lastProgress?: Frame;
  readonly pieces: Frame[] = [];
  endFrame?: Frame;
  readonly done: Promise<void>;
  resolveDone!: () => void;

  constructor(
    readonly id: string,
    readonly ref: IssueRef,
    readonly issueUrl: string,
    readonly openPr: boolean,
    readonly requestId: string | undefined,
    readonly userId: string,
  ) {
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get room(): string {
    return runRoom(this.id);
  }

  throwIfEnded(): void {
    if (this.ended) throw new RunEnded();
  }

  /** A frame of this run: `run_id`, and the `solve`'s `id` when it had one. */
  frame(type: string, fields: Record<string, unknown> = {}): Frame {
    return runFrame(this.id, this.requestId, type, fields);
  }

  /** `solver_progress`, with progress clamped so it never falls. */
  progressFrame(stage: SolverStage, progress: number, message: string): Frame {
    this.stage = stage;
    this.progress = Math.min(100, Math.max(this.progress, Math.round(progress)));
    this.stages.push({ stage, progress: this.progress, message, at: new Date().toISOString() });
    this.lastProgress = this.frame('solver_progress', { stage, progress: this.progress, message });
    return this.lastProgress;
  }

  piece(kind: 'reasoning' | 'solution', content: string): Frame {
    this.seq += 1;
    const frame = this.frame(kind === 'reasoning' ? 'solver_reasoning' : 'solver_solution', { seq: this.seq, content });
    this.pieces.push(frame);
    return frame;
  }

  /** A late viewer's catch-up: started, the current progress, the pieces after `afterSeq`, the end if any. */
  catchUp(afterSeq: number): Frame[] {
    const frames: Frame[] = [];
    if (this.started) frames.push(this.started);
    if (this.lastProgress) frames.push(this.lastProgress);
    for (const frame of this.pieces) if ((frame.seq as number) > afterSeq) frames.push(frame);
    if (this.endFrame) frames.push(this.endFrame);
    return frames;
  }

  addUsage(usage: LlmUsage): void {
    this.usageSeen = true;
    this.usage.prompt_tokens += usage.prompt_tokens;
    this.usage.completion_tokens += usage.completion_tokens;
    this.usage.total_tokens += usage.total_tokens;
    if (usage.reasoning_tokens !== undefined) this.usage.reasoning_tokens = (this.usage.reasoning_tokens ?? 0) + usage.reasoning_tokens;
  }
}

import { Injectable } from '@nestjs/common';
import { Kysely, Selectable, Updateable } from 'kysely';
import { nowIso } from '../common/clock';
import { objectColumn, readObject } from './json-columns';
import type { Usage } from './messages.repository';
import { Database, SolverRunsTable } from './schema';

/** A run as stored: stages, files and usage are JSON text. Only this repository sees it. */
type SolverRunRow = Selectable<SolverRunsTable>;
export type SolverRunStatus = SolverRunsTable['status'];

/** One step of a run's progress, as it went. */
export interface StageEntry {
  stage: string;
  progress: number;
  message: string;
  at: string;
}

/** A stored Solver run: the row with its JSON columns parsed. */
export interface SolverRunRecord extends Omit<SolverRunRow, 'stages' | 'files' | 'usage'> {
  stages: StageEntry[];
  /** Paths the patch touches (or the files read, for a stopped run). */
  files: string[];
  /** The summed model usage of the run's calls. */
  usage: Usage | null;
}

export interface NewSolverRun {
  id: string;
  user_id: string;
  issue_url: string;
  repo: string;
  issue_number: number;
  open_pr: boolean;
  request_id?: string | null;
}

export type SolverRunChanges = Omit<Updateable<SolverRunsTable>, 'id' | 'created_at' | 'updated_at' | 'stages' | 'files' | 'usage'> & {
  stages?: readonly StageEntry[];
  files?: readonly string[];
  usage?: Usage;
};

function toRecord(row: SolverRunRow): SolverRunRecord;
function toRecord(row: SolverRunRow | undefined): SolverRunRecord | undefined;
function toRecord(row: SolverRunRow | undefined): SolverRunRecord | undefined {
  if (!row) return undefined;
  return {
    ...row,
    stages: row.stages ? (JSON.parse(row.stages) as StageEntry[]) : [],
    files: row.files ? (JSON.parse(row.files) as string[]) : [],
    usage: readObject<Usage>(row.usage),
  };
}

/** Solver runs: written at start, at each stage and at the end (never per token). */
@Injectable()
export class SolverRunsRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(run: NewSolverRun): Promise<SolverRunRecord> {
    const now = nowIso();
    const row: SolverRunRow = {
      id: run.id,
      user_id: run.user_id,
      issue_url: run.issue_url,
      repo: run.repo,
      issue_number: run.issue_number,
      issue_title: null,
      open_pr: run.open_pr ? 1 : 0,
      status: 'running',
      stage: 'issue',
      progress: 0,
      stages: '[]',
      summary: null,
      files: '[]',
      patch: null,
      applies: null,
      pr_url: null,
      error_code: null,
      error_message: null,
      usage: null,
      request_id: run.request_id ?? null,
      created_at: now,
      updated_at: now,
    };
    await this.db.insertInto('solver_runs').values(row).execute();
    return toRecord(row);
  }

  async update(id: string, changes: SolverRunChanges): Promise<void> {
    const { stages, files, usage, ...plain } = changes;
    await this.db
      .updateTable('solver_runs')
      .set({
        ...plain,
        ...(stages ? { stages: JSON.stringify(stages) } : {}),
        ...(files ? { files: JSON.stringify(files) } : {}),
        ...(usage ? { usage: objectColumn(usage) } : {}),
        updated_at: nowIso(),
      })
      .where('id', '=', id)
      .execute();
  }

  async findById(id: string): Promise<SolverRunRecord | undefined> {
    return toRecord(await this.db.selectFrom('solver_runs').selectAll().where('id', '=', id).executeTakeFirst());
  }

  /** A user's runs, newest first. */
  async listByUser(userId: string, limit = 100): Promise<SolverRunRecord[]> {
    const rows = await this.db.selectFrom('solver_runs').selectAll().where('user_id', '=', userId).orderBy('created_at', 'desc').limit(limit).execute();
    return rows.map((row) => toRecord(row));
  }

  /** After a crash: runs left `running` ended part-way. Returns how many. */
  async interruptAllRunning(): Promise<number> {
    const result = await this.db
      .updateTable('solver_runs')
      .set({ status: 'interrupted', updated_at: nowIso() })
      .where('status', '=', 'running')
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }
}

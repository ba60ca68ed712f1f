import { Injectable } from '@nestjs/common';
import { Kysely, Selectable, Updateable } from 'kysely';
import { nowIso } from '../common/clock';
import { Database, SolverRunsTable } from './schema';

export type SolverRunRow = Selectable<SolverRunsTable>;
export type SolverRunStatus = SolverRunsTable['status'];

export interface NewSolverRun {
  id: string;
  user_id: string;
  issue_url: string;
  repo: string;
  issue_number: number;
  open_pr: boolean;
  request_id?: string | null;
}

export type SolverRunChanges = Omit<Updateable<SolverRunsTable>, 'id' | 'created_at' | 'updated_at'>;

/** Solver runs: written at start, at each stage and at the end (never per token). */
@Injectable()
export class SolverRunsRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(run: NewSolverRun): Promise<SolverRunRow> {
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
    return row;
  }

  async update(id: string, changes: SolverRunChanges): Promise<void> {
    await this.db
      .updateTable('solver_runs')
      .set({ ...changes, updated_at: nowIso() })
      .where('id', '=', id)
      .execute();
  }

  findById(id: string): Promise<SolverRunRow | undefined> {
    return this.db.selectFrom('solver_runs').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** A user's runs, newest first. */
  listByUser(userId: string, limit = 100): Promise<SolverRunRow[]> {
    return this.db.selectFrom('solver_runs').selectAll().where('user_id', '=', userId).orderBy('created_at', 'desc').limit(limit).execute();
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

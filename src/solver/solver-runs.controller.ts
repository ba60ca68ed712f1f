import { Controller, Get, Param } from '@nestjs/common';
import { AuthUser } from '../auth/auth-user';
import { CurrentUser } from '../auth/auth.decorators';
import { SolverRunRecord } from '../storage/solver-runs.repository';
import { SolverService } from './solver.service';

export interface SolverRunView {
  id: string;
  issue_url: string;
  repo: string;
  issue_number: number;
  title: string | null;
  status: string;
  stage: string;
  progress: number;
  applies: boolean | null;
  pr_url: string | null;
  created_at: string;
  updated_at: string;
}

export interface SolverRunDetail extends SolverRunView {
  summary: string | null;
  files: string[];
  patch: string | null;
  stages: Array<{ stage: string; progress: number; message: string; at: string }>;
  error: { code: string; message: string } | null;
  pr_error: string | null;
  usage: Record<string, number> | null;
}

/** The caller's Solver runs (JSON API beside the chats'). */
@Controller('api/solver/runs')
export class SolverRunsController {
  constructor(private readonly solver: SolverService) {}

  @Get()
  async list(@CurrentUser() user: AuthUser): Promise<{ runs: SolverRunView[] }> {
    return { runs: (await this.solver.listRuns(user.id)).map(toView) };
  }

  @Get(':id')
  async get(@CurrentUser() user: AuthUser, @Param('id') id: string): Promise<SolverRunDetail> {
    return toDetail(await this.solver.getRun(id, user.id));
  }
}

function toView(row: SolverRunRecord): SolverRunView {
  return {
    id: row.id,
    issue_url: row.issue_url,
    repo: row.repo,
    issue_number: row.issue_number,
    title: row.issue_title,
    status: row.status,
    stage: row.stage,
    progress: row.progress,
    applies: row.applies === null ? null : row.applies === 1,
    pr_url: row.pr_url,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

function toDetail(row: SolverRunRecord): SolverRunDetail {
  const failed = row.status === 'error' || row.status === 'interrupted';
  return {
    ...toView(row),
    summary: row.summary,
    files: row.files,
    patch: row.patch,
    stages: row.stages,
    error: failed && row.error_code ? { code: row.error_code, message: row.error_message ?? '' } : null,
    pr_error: !failed ? row.error_message : null,
    usage: row.usage as Record<string, number> | null,
  };
}

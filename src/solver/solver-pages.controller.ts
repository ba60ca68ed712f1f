import { Controller, Get, Res } from '@nestjs/common';
import type { Response } from 'express';
import { AuthUser } from '../auth/auth-user';
import { CurrentUser } from '../auth/auth.decorators';
import { PageRenderer } from '../common/page-renderer';
import { UuidParam } from '../common/uuid';
import { SolverRunRecord } from '../storage/solver-runs.repository';
import { SolverService } from './solver.service';

/** The stages a run goes through, in order (`pr` only when a pull request was asked for). */
const STAGES: Array<{ id: string; label: string }> = [
  { id: 'issue', label: 'Issue' },
  { id: 'repomap', label: 'Repository map' },
  { id: 'files', label: 'Files' },
  { id: 'solution', label: 'Solution' },
  { id: 'verify', label: 'Verify' },
  { id: 'pr', label: 'Pull request' },
  { id: 'complete', label: 'Done' },
];

/** How many of the caller's runs the sidebar lists. */
const RECENT_RUNS = 30;

/**
 * The Solver pages: `/solver` (the issue form; a run streams over `/ws`) and `/solver/:run_id` (a
 * stored run rendered on the server: status, summary, files, patch). Same shell and CSP rules as
 * the chat pages: no inline script or style, `public/solver.js` does the rest.
 */
@Controller('solver')
export class SolverPagesController {
  constructor(
    private readonly solver: SolverService,
    private readonly pages: PageRenderer,
  ) {}

  @Get()
  async newRun(@CurrentUser() user: AuthUser, @Res() res: Response): Promise<void> {
    await this.render(user, res, null);
  }

  @Get(':run_id')
  async showRun(@CurrentUser() user: AuthUser, @UuidParam('run_id', 'run') id: string, @Res() res: Response): Promise<void> {
    const row = await this.solver.getRun(id, user.id);
    await this.render(user, res, row);
  }

  private async render(user: AuthUser, res: Response, row: SolverRunRecord | null): Promise<void> {
    const runs = (await this.solver.listRuns(user.id)).slice(0, RECENT_RUNS).map((r) => ({
      id: r.id,
      label: `${r.repo}#${r.issue_number}`,
      title: r.issue_title,
      status: r.status,
      active: r.id === row?.id,
    }));
    this.pages.render(res, 'solver', {
      pageTitle: row ? `Solver: ${row.repo}#${row.issue_number}` : 'Solver',
      runs,
      run: row ? runModel(row) : null,
      stages: stageModel(row),
      user: user.sessionKey ? { username: user.username } : null,
    });
  }
}

function runModel(row: SolverRunRecord) {
  const failed = row.status === 'error' || row.status === 'interrupted';
  const stages = row.stages;
  const last = stages[stages.length - 1];
  return {
    id: row.id,
    issue_url: row.issue_url,
    label: `${row.repo}#${row.issue_number}`,
    title: row.issue_title,
    status: row.status,
    running: row.status === 'running',
    stage: row.stage,
    progress: row.progress,
    message: last?.message ?? '',
    summary: row.summary,
    files: row.files,
    patch: row.patch,
    applies: row.applies === null ? null : row.applies === 1,
    appliesKnown: row.applies !== null,
    pr_url: row.pr_url,
    open_pr: row.open_pr === 1,
    error: failed ? { code: row.error_code ?? 'internal', message: row.error_message ?? '' } : null,
    pr_error: failed ? null : row.error_message,
    stageLog: stages,
  };
}

/** Each stage with its state for the stored run (`done`, `active`, `pending`); none for a new page. */
function stageModel(row: SolverRunRecord | null) {
  const reached = row ? STAGES.findIndex((s) => s.id === row.stage) : -1;
  return STAGES.map((s, i) => ({
    ...s,
    hidden: s.id === 'pr' && !(row?.open_pr === 1),
    state: !row
      ? 'pending'
      : row.status === 'complete' || i < reached
        ? 'done'
        : i === reached
          ? row.status === 'running'
            ? 'active'
            : row.status === 'stopped'
              ? 'stopped'
              : 'failed'
          : 'pending',
  }));
}

import { Module } from '@nestjs/common';
import { GenerationModule } from '../generation/generation.module';
import { DeclarationReader } from './declaration-reader';
import { GithubClient } from './github.client';
import { SolverPagesController } from './solver-pages.controller';
import { SolverRunsController } from './solver-runs.controller';
import { SolverGateway } from './solver.gateway';
import { SolverPipeline } from './solver.pipeline';
import { SolverService } from './solver.service';

/** The Solver: a GitHub issue in, a checked patch (and optionally a pull request) out, over `/ws`. */
@Module({
  imports: [GenerationModule],
  controllers: [SolverRunsController, SolverPagesController],
  providers: [SolverGateway, SolverService, SolverPipeline, GithubClient, DeclarationReader],
  exports: [SolverService],
})
export class SolverModule {}

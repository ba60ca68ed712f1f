import { Module } from '@nestjs/common';
import { GenerationService } from './generation.service';
import { StopGateway } from './stop.gateway';
import { StopRegistry } from './stop.registry';

/** Generations as jobs and the `stop` of any job; used by chat and the Solver, depends on neither. */
@Module({
  providers: [GenerationService, StopRegistry, StopGateway],
  exports: [GenerationService, StopRegistry],
})
export class GenerationModule {}

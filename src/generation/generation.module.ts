import { Module } from '@nestjs/common';
import { GenerationService } from './generation.service';
import { StopRegistry } from './stop.registry';

/** Generations as jobs; used by chat (and the Solver), depends on neither. */
@Module({
  providers: [GenerationService, StopRegistry],
  exports: [GenerationService, StopRegistry],
})
export class GenerationModule {}

import { Module } from '@nestjs/common';
import { GenerationService } from './generation.service';

/** Generations as jobs; used by chat (and the Solver), depends on neither. */
@Module({
  providers: [GenerationService],
  exports: [GenerationService],
})
export class GenerationModule {}

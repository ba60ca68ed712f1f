import { Module } from '@nestjs/common';
import { RedisService } from '../redis/redis.service';
import { GenerationLog, LocalGenerationLog, RedisGenerationLog } from './generation-log';
import { GenerationService } from './generation.service';
import { StopGateway } from './stop.gateway';
import { StopRegistry } from './stop.registry';

/** Generations as jobs and the `stop` of any job; used by chat and the Solver, depends on neither. */
@Module({
  providers: [
    GenerationService,
    StopRegistry,
    StopGateway,
    {
      // One process keeps an answer's log in memory; many instances share it through Redis.
      provide: GenerationLog,
      inject: [RedisService],
      useFactory: (redis: RedisService): GenerationLog => (redis.enabled ? new RedisGenerationLog(redis) : new LocalGenerationLog()),
    },
  ],
  exports: [GenerationService, StopRegistry],
})
export class GenerationModule {}

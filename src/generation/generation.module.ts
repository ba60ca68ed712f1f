import { Module } from '@nestjs/common';
import { Environment } from '../config/environment';
import { RedisService } from '../redis/redis.service';
import { MessagesRepository } from '../storage/messages.repository';
import { Fanout } from '../transport/fanout';
import { GenerationLog, LocalGenerationLog, RedisGenerationLog } from './generation-log';
import { GenerationService } from './generation.service';
import { Instances, LocalInstances, RedisInstances } from './instances';
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
    {
      // One process has no other instance; many coordinate through Redis (stop channel, heartbeats,
      // the dead ones' answers, frames held after a stall).
      provide: Instances,
      inject: [RedisService, Environment, MessagesRepository, GenerationLog, Fanout],
      useFactory: (redis: RedisService, env: Environment, messages: MessagesRepository, log: GenerationLog, fanout: Fanout): Instances =>
        redis.enabled ? new RedisInstances(redis, env, messages, log, fanout) : new LocalInstances(messages),
    },
  ],
  exports: [GenerationService, StopRegistry],
})
export class GenerationModule {}

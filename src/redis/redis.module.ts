import { Global, Module } from '@nestjs/common';
import { RedisService } from './redis.service';

/** Redis when `REDIS_URL` is set (a no-op service otherwise): fan-out, logs, limits across instances. */
@Global()
@Module({
  providers: [RedisService],
  exports: [RedisService],
})
export class RedisModule {}

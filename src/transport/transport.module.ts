import { Global, Module } from '@nestjs/common';
import { RedisService } from '../redis/redis.service';
import { ConnectionRegistry } from './connection-registry';
import { Fanout, LocalFanout, RedisFanout } from './fanout';

@Global()
@Module({
  providers: [
    ConnectionRegistry,
    {
      provide: Fanout,
      inject: [ConnectionRegistry, RedisService],
      useFactory: (registry: ConnectionRegistry, redis: RedisService): Fanout => (redis.enabled ? new RedisFanout(registry, redis) : new LocalFanout(registry)),
    },
  ],
  exports: [ConnectionRegistry, Fanout],
})
export class TransportModule {}

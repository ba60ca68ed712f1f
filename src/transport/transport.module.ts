import { Global, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { RedisService } from '../redis/redis.service';
import { ConnectionRegistry } from './connection-registry';
import { Fanout, LocalFanout, RedisFanout } from './fanout';
import { FrameRouter } from './frame-router';
import { FrameSocketServer } from './frame-socket.server';

/**
 * The chat's socket: the registry of connections, the fan-out of room frames across instances, and
 * FrameSocketServer (its own `ws` server on the app's HTTP server, attached at bootstrap) with the
 * FrameRouter that finds the `@FrameGateway()` handlers. Global: handlers anywhere inject the registry.
 */
@Global()
@Module({
  imports: [DiscoveryModule],
  providers: [
    ConnectionRegistry,
    {
      provide: Fanout,
      inject: [ConnectionRegistry, RedisService],
      useFactory: (registry: ConnectionRegistry, redis: RedisService): Fanout => (redis.enabled ? new RedisFanout(registry, redis) : new LocalFanout(registry)),
    },
    FrameRouter,
    FrameSocketServer,
  ],
  exports: [ConnectionRegistry, Fanout, FrameSocketServer],
})
export class TransportModule {}

import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { Kysely } from 'kysely';
import { RedisService } from '../redis/redis.service';
import { Database } from '../storage/schema';
import { pingDatabase } from '../storage/storage.module';

/** Health of the services the app needs: the database, and Redis where it is configured. */
@Injectable()
export class DatabaseHealthIndicator {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly indicators: HealthIndicatorService,
    readonly redis: RedisService,
  ) {}

  check(key: string) {
    return this.probe(key, () => pingDatabase(this.db));
  }

  checkRedis(key: string) {
    return this.probe(key, () => this.redis.ping());
  }

  private async probe(key: string, ping: () => Promise<void>) {
    const indicator = this.indicators.check(key);
    try {
      await ping();
      return indicator.up();
    } catch (error) {
      return indicator.down({ message: (error as Error).message });
    }
  }
}

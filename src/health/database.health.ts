import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { Kysely } from 'kysely';
import { RedisService } from '../redis/redis.service';
import { Database } from '../storage/schema';
import { pingDatabase } from '../storage/storage.module';

@Injectable()
export class DatabaseHealthIndicator {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly indicators: HealthIndicatorService,
    readonly redis: RedisService,
  ) {}

  async checkRedis(key: string) {
    const indicator = this.indicators.check(key);
    try {
      await this.redis.ping();
      return indicator.up();
    } catch (error) {
      return indicator.down({ message: (error as Error).message });
    }
  }

  async check(key: string) {
    const indicator = this.indicators.check(key);
    try {
      await pingDatabase(this.db);
      return indicator.up();
    } catch (error) {
      return indicator.down({ message: (error as Error).message });
    }
  }
}

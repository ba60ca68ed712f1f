import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { Kysely } from 'kysely';
import { Database } from '../storage/schema';
import { pingDatabase } from '../storage/storage.module';

@Injectable()
export class DatabaseHealthIndicator {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly indicators: HealthIndicatorService,
  ) {}

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

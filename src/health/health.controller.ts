import { Controller, Get, Res, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import type { Response } from 'express';
import { Public } from '../auth/auth.decorators';
import { DatabaseHealthIndicator } from './database.health';

@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: DatabaseHealthIndicator,
  ) {}

  /** 200 `{status: "ok", …}` while the database answers, else 503 with the same shape. */
  @Public()
  @Get()
  @HealthCheck()
  async check(@Res({ passthrough: true }) res: Response) {
    try {
      const checks = [() => this.database.check('database')];
      if (this.database.redis.enabled) checks.push(() => this.database.checkRedis('redis'));
      return await this.health.check(checks);
    } catch (error) {
      if (!(error instanceof ServiceUnavailableException)) throw error;
      res.status(503);
      return error.getResponse();
    }
  }
}

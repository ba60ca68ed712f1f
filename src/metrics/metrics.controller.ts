import { Controller, Get, Header } from '@nestjs/common';
import { AuthUser } from '../auth/auth-user';
import { CurrentUser } from '../auth/auth.decorators';
import { AppError } from '../common/app-error';
import { MetricsService } from './metrics.service';

/** Prometheus text format, for the admin only (with AUTH_MODE=none the single user is the admin). */
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  @Get()
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  async scrape(@CurrentUser() user: AuthUser): Promise<string> {
    if (!user.isAdmin) throw new AppError('forbidden', 'metrics are for the admin');
    return this.metrics.text();
  }
}

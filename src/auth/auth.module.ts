import { Global, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { AuthController } from './auth.controller';
import { AuthGuard } from './auth.guard';
import { AuthService } from './auth.service';
import { RateLimits } from './rate-limits';

@Global()
@Module({
  controllers: [AuthController],
  providers: [AuthService, RateLimits, { provide: APP_GUARD, useClass: AuthGuard }],
  exports: [AuthService, RateLimits],
})
export class AuthModule {}

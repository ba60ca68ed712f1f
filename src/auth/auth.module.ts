import { DynamicModule, Global, Module } from '@nestjs/common';
import { AuthFormFilter } from './auth-form.filter';
import { AuthPages } from './auth-pages';
import { AuthController } from './auth.controller';
import { AuthGuard } from './auth.guard';
import { AuthService } from './auth.service';
import { HostCheck } from './host-check';
import { RateLimits } from './rate-limits';
import { UpgradeAuth } from './upgrade-auth';

/**
 * Accounts, sessions and the checks of HTTP routes and WebSocket upgrades. `accounts: false` (a host
 * brings its own UserResolver) leaves out our sign-up/login pages. The `UserResolver` port itself is
 * bound by ChatSystemModule.
 */
@Global()
@Module({})
export class AuthModule {
  static forRoot(options: { accounts?: boolean } = {}): DynamicModule {
    return {
      module: AuthModule,
      controllers: options.accounts === false ? [] : [AuthController],
      providers: [AuthService, RateLimits, UpgradeAuth, AuthGuard, HostCheck, AuthPages, AuthFormFilter],
      exports: [AuthService, RateLimits, UpgradeAuth, AuthGuard, HostCheck],
    };
  }
}

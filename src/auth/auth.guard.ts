import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request, Response } from 'express';
import { AppError } from '../common/app-error';
import { AuthUser } from './auth-user';
import { IS_PUBLIC } from './auth.decorators';
import { AuthService } from './auth.service';
import { UserResolver } from './user-resolver';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Every HTTP route of the chat system (ChatSystemModule puts it on each of its controllers; it is not
 * an APP_GUARD, so an embedding host's own routes stay its own): a state-changing request from a
 * foreign Origin is 403 (CSRF), then the UserResolver decides — pages go to the login page, the API
 * answers 401 (the error filter maps `unauthorized`). A host may put it on its own controllers too.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly auth: AuthService,
    private readonly users: UserResolver,
    private readonly reflector: Reflector,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true;
    const req = context.switchToHttp().getRequest<Request & { user?: AuthUser }>();
    if (!SAFE_METHODS.has(req.method) && !this.auth.originAllowed(req)) {
      throw new AppError('forbidden', 'cross-origin request refused');
    }
    const user = await this.users.resolve(req);
    if (user) req.user = user;
    if (user?.sessionKey && req.method === 'GET' && req.accepts(['html', 'json']) === 'html') {
      await this.describeAccount(user, context.switchToHttp().getResponse<Response>());
    }
    const isPublic = this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [context.getHandler(), context.getClass()]);
    if (isPublic || user) return true;
    throw new AppError('unauthorized', 'sign in first');
  }

  /** What the account menu of every page shows (views/partials/account_menu.hbs). */
  private async describeAccount(user: AuthUser, res: Response): Promise<void> {
    res.locals.account = {
      username: user.username,
      isAdmin: user.isAdmin,
      signupOpen: user.isAdmin ? await this.auth.signupOpen() : undefined,
      signupLocked: this.auth.signupLocked,
    };
  }
}

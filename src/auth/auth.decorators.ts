import { createParamDecorator, type ExecutionContext, SetMetadata } from '@nestjs/common';
import type { Request } from 'express';
import type { AuthUser } from './auth-user';

export const IS_PUBLIC = 'auth:public';

/** A route anyone may reach without a session. */
export const Public = () => SetMetadata(IS_PUBLIC, true);

/** The signed-in user of an HTTP request (set by AuthGuard). */
export const CurrentUser = createParamDecorator((_data: unknown, ctx: ExecutionContext): AuthUser => {
  const user = ctx.switchToHttp().getRequest<Request & { user?: AuthUser }>().user;
  if (!user) throw new Error('CurrentUser used on a route without AuthGuard');
  return user;
});

import { ArgumentsHost, Catch, Injectable } from '@nestjs/common';
import type { Request, Response } from 'express';
import { HttpErrorFilter } from '../common/http-error.filter';
import { MountPoint } from '../common/mount';
import { AuthUser } from './auth-user';
import { AuthForm, AuthPages } from './auth-pages';

/** Whether the request is an HTML form's post (JSON clients keep JSON answers). */
export function isForm(req: Request): boolean {
  return Boolean(req.is(['application/x-www-form-urlencoded', 'multipart/form-data']));
}

/**
 * A refused form of ours (wrong password, name taken, too short, sign-up closed, rate limited, a
 * foreign origin) is shown again with the message and the typed user name, with the error's status:
 * a person never meets a JSON page. Everything else, and every JSON client, goes to HttpErrorFilter.
 */
@Catch()
@Injectable()
export class AuthFormFilter extends HttpErrorFilter {
  private readonly forms: Map<string, AuthForm>;

  constructor(
    mount: MountPoint,
    private readonly pages: AuthPages,
  ) {
    super(mount);
    this.forms = new Map<string, AuthForm>([
      [mount.path('/auth/login'), 'login'],
      [mount.path('/auth/signup'), 'signup'],
      [mount.path('/auth/password'), 'account'],
      [mount.path('/auth/signup-open'), 'account'],
      [mount.path('/auth/logout'), 'account'],
    ]);
  }

  override catch(exception: unknown, host: ArgumentsHost): void {
    const req = host.switchToHttp().getRequest<Request & { user?: AuthUser }>();
    const res = host.switchToHttp().getResponse<Response>();
    let form = this.forms.get(req.path);
    if (form === 'account' && !req.user) form = 'login';
    if (!form || !isForm(req) || res.headersSent) return super.catch(exception, host);
    const { status, message } = this.describe(exception, req);
    const body = req.body as { username?: unknown } | undefined;
    const username = typeof body?.username === 'string' ? body.username.slice(0, 64) : undefined;
    this.pages.render(res, form, { error: message, username }, req.user, status).catch((error: unknown) => super.catch(error, host));
  }
}

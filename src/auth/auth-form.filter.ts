import { ArgumentsHost, Catch, Injectable } from '@nestjs/common';
import type { Request, Response } from 'express';
import { HttpErrorFilter } from '../common/http-error.filter';
import { MountPoint } from '../common/mount';
import { PageRenderer } from '../common/page-renderer';
import { AuthUser } from './auth-user';
import { AuthForm, AuthPages } from './auth-pages';

/** Whether the request is an HTML form's post (JSON clients keep JSON answers). */
export function isForm(req: Request): boolean {
  return Boolean(req.is(['application/x-www-form-urlencoded', 'multipart/form-data']));
}

/** Our form posts (`/auth/<name>`) and the page each one comes from. */
const FORMS = new Map<string, AuthForm>([
  ['login', 'login'],
  ['signup', 'signup'],
  ['password', 'account'],
  ['signup-open', 'account'],
  ['logout', 'account'],
]);

/**
 * A refused form of ours (wrong password, name taken, too short, sign-up closed, rate limited, a
 * foreign origin) is shown again with the message and the typed user name, with the error's status:
 * a person never meets a JSON page. Everything else, and every JSON client, goes to HttpErrorFilter.
 */
@Catch()
@Injectable()
export class AuthFormFilter extends HttpErrorFilter {
  constructor(
    mount: MountPoint,
    renderer: PageRenderer,
    private readonly forms: AuthPages,
  ) {
    super(mount, renderer);
  }

  override catch(exception: unknown, host: ArgumentsHost): void {
    const req = host.switchToHttp().getRequest<Request & { user?: AuthUser }>();
    const res = host.switchToHttp().getResponse<Response>();
    // The base path is read per request: it is final only once the app has initialised.
    const base = this.mount.basePath;
    let form = req.path.startsWith(`${base}/auth/`) ? FORMS.get(req.path.slice(base.length + '/auth/'.length)) : undefined;
    if (form === 'account' && !req.user) form = 'login';
    if (!form || !isForm(req) || res.headersSent) return super.catch(exception, host);
    const { status, message } = this.describe(exception, req);
    const body = req.body as { username?: unknown } | undefined;
    const username = typeof body?.username === 'string' ? body.username.slice(0, 64) : undefined;
    this.forms.render(res, form, { error: message, username }, req.user, status).catch((error: unknown) => super.catch(error, host));
  }
}

import { applyDecorators, Body, Controller, Get, Post, Query, Req, Res, UseFilters } from '@nestjs/common';
import type { Request, Response } from 'express';
import { MountPoint } from '../common/mount';
import { AuthFormFilter, isForm } from './auth-form.filter';
import { AuthPages } from './auth-pages';
import { AuthUser, SESSION_COOKIE } from './auth-user';
import { CurrentUser, Public } from './auth.decorators';
import { AuthService, IssuedSession, SESSION_TTL_MS } from './auth.service';
import { CredentialsDto, LoginDto, PasswordChangeDto, SignupSwitchDto } from './dto/credentials.dto';

/** A post of one of our forms: a refusal re-renders the form (AuthFormFilter), JSON keeps JSON. */
const FormPost = (path: string) => applyDecorators(Post(path), UseFilters(AuthFormFilter));

const NOTICES: Record<string, string> = {
  password: 'Password changed. Your other sessions were signed out.',
  signup: 'Sign-up setting saved.',
};

/**
 * Sign-up, login, logout, password change and the admin's sign-up switch: JSON for scripts, forms
 * (303 redirects, or the form again with the refusal) for the pages.
 */
@Controller()
export class AuthController {
  constructor(
    private readonly auth: AuthService,
    private readonly pages: AuthPages,
    private readonly mount: MountPoint,
  ) {}

  @Public()
  @Get('login')
  loginPage(@Res() res: Response): Promise<void> {
    return this.pages.render(res, 'login');
  }

  @Public()
  @Get('signup')
  signupPage(@Res() res: Response): Promise<void> {
    return this.pages.render(res, 'signup');
  }

  @Get('account')
  accountPage(@CurrentUser() user: AuthUser, @Query('done') done: unknown, @Res() res: Response): Promise<void> {
    return this.pages.render(res, 'account', { notice: typeof done === 'string' ? NOTICES[done] : undefined }, user);
  }

  @Public()
  @FormPost('auth/signup')
  async signup(@Body() dto: CredentialsDto, @Req() req: Request, @Res() res: Response): Promise<void> {
    this.signedIn(req, res, 201, await this.auth.signup(dto, clientAddress(req)));
  }

  @Public()
  @FormPost('auth/login')
  async login(@Body() dto: LoginDto, @Req() req: Request, @Res() res: Response): Promise<void> {
    this.signedIn(req, res, 200, await this.auth.login(dto, clientAddress(req)));
  }

  @FormPost('auth/logout')
  async logout(@CurrentUser() user: AuthUser, @Req() req: Request, @Res() res: Response): Promise<void> {
    await this.auth.logout(user);
    res.clearCookie(SESSION_COOKIE, { path: sessionCookiePath(this.mount) });
    if (isForm(req)) res.redirect(303, this.mount.path('/login'));
    else res.status(204).end();
  }

  @FormPost('auth/password')
  async changePassword(@CurrentUser() user: AuthUser, @Body() dto: PasswordChangeDto, @Req() req: Request, @Res() res: Response): Promise<void> {
    await this.auth.changePassword(user, dto.current_password, dto.new_password, clientAddress(req));
    if (isForm(req)) res.redirect(303, this.mount.path('/account?done=password'));
    else res.status(204).end();
  }

  @FormPost('auth/signup-open')
  async setSignupOpen(@CurrentUser() user: AuthUser, @Body() dto: SignupSwitchDto, @Req() req: Request, @Res() res: Response): Promise<void> {
    const open = await this.auth.setSignupOpen(user, dto.open === 'true');
    if (isForm(req)) res.redirect(303, this.mount.path('/account?done=signup'));
    else res.status(200).json({ signup_open: open });
  }

  private signedIn(req: Request, res: Response, status: number, session: IssuedSession): void {
    res.cookie(SESSION_COOKIE, session.token, {
      httpOnly: true,
      sameSite: 'lax',
      // https directly, or X-Forwarded-Proto from a proxy trusted by TRUST_PROXY.
      secure: req.secure,
      path: sessionCookiePath(this.mount),
      maxAge: SESSION_TTL_MS,
    });
    if (isForm(req)) res.redirect(303, this.mount.path('/chat'));
    else res.status(status).json({ id: session.user.id, username: session.user.username });
  }
}

/**
 * The session cookie goes only where it is read: our pages and APIs (under the base path) and our
 * socket, so not to a host's other routes. The path both share, segment by segment (`/` when they
 * share none, e.g. `/assistant` with the socket on `/ws`).
 */
export function sessionCookiePath(mount: MountPoint): string {
  const base = mount.basePath.split('/');
  const ws = mount.wsPath.split('/');
  let shared = 0;
  while (shared < base.length && base[shared] === ws[shared]) shared++;
  return base.slice(0, shared).join('/') || '/';
}

/** The client's address for limits: Express's `req.ip` follows TRUST_PROXY. */
function clientAddress(req: Request): string {
  return req.ip ?? req.socket.remoteAddress ?? 'unknown';
}

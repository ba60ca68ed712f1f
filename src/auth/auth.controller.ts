import { Body, Controller, Get, HttpCode, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { AppError } from '../common/app-error';
import { MountPoint } from '../common/mount';
import { Environment } from '../config/environment';
import { AuthUser, SESSION_COOKIE } from './auth-user';
import { CurrentUser, Public } from './auth.decorators';
import { AuthService, IssuedSession, SESSION_TTL_MS } from './auth.service';
import { CredentialsDto, LoginDto, MIN_PASSWORD_LENGTH } from './dto/credentials.dto';

/** Sign-up, login and logout: JSON for scripts, forms (303 redirects) for the pages. */
@Controller()
export class AuthController {
  constructor(
    private readonly auth: AuthService,
    private readonly env: Environment,
    private readonly mount: MountPoint,
  ) {}

  @Public()
  @Get('login')
  loginPage(@Res() res: Response): void {
    res.render('login', { layout: false, pageTitle: 'Sign in', mode: 'login', signupOpen: this.env.ALLOW_SIGNUP !== 'false' });
  }

  @Public()
  @Get('signup')
  signupPage(@Res() res: Response): void {
    res.render('login', { layout: false, pageTitle: 'Create account', mode: 'signup', minPassword: MIN_PASSWORD_LENGTH });
  }

  @Public()
  @Post('auth/signup')
  async signup(@Body() dto: CredentialsDto, @Req() req: Request, @Res() res: Response): Promise<void> {
    await this.answer(req, res, 201, 'signup', () => this.auth.signup(dto));
  }

  @Public()
  @Post('auth/login')
  async login(@Body() dto: LoginDto, @Req() req: Request, @Res() res: Response): Promise<void> {
    await this.answer(req, res, 200, 'login', () => this.auth.login(dto, req.ip ?? 'unknown'));
  }

  @Post('auth/logout')
  @HttpCode(204)
  async logout(@CurrentUser() user: AuthUser, @Req() req: Request, @Res() res: Response): Promise<void> {
    await this.auth.logout(user);
    res.clearCookie(SESSION_COOKIE, { path: '/' });
    if (isForm(req)) res.redirect(303, this.mount.path('/login'));
    else res.status(204).end();
  }

  private async answer(req: Request, res: Response, status: number, mode: string, act: () => Promise<IssuedSession>): Promise<void> {
    let session: IssuedSession;
    try {
      session = await act();
    } catch (error) {
      if (!isForm(req) || !(error instanceof AppError)) throw error;
      const code = error.code === 'unauthorized' ? 401 : error.code === 'conflict' ? 409 : error.code === 'rate_limited' ? 429 : 403;
      res.status(code).render('login', { layout: false, pageTitle: 'Sign in', mode, error: error.message, signupOpen: this.env.ALLOW_SIGNUP !== 'false', minPassword: MIN_PASSWORD_LENGTH });
      return;
    }
    res.cookie(SESSION_COOKIE, session.token, {
      httpOnly: true,
      sameSite: 'lax',
      secure: req.secure,
      path: '/',
      maxAge: SESSION_TTL_MS,
    });
    if (isForm(req)) res.redirect(303, this.mount.path('/chat'));
    else res.status(status).json({ id: session.user.id, username: session.user.username });
  }
}

function isForm(req: Request): boolean {
  return req.is('application/x-www-form-urlencoded') === 'application/x-www-form-urlencoded' || req.is('multipart/form-data') === 'multipart/form-data';
}

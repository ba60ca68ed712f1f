import { Injectable } from '@nestjs/common';
import type { Response } from 'express';
import { PageRenderer } from '../common/page-renderer';
import { AuthUser } from './auth-user';
import { AuthService } from './auth.service';
import { MIN_PASSWORD_LENGTH } from './dto/credentials.dto';

export type AuthForm = 'login' | 'signup' | 'account';

const TITLES: Record<AuthForm, string> = { login: 'Sign in', signup: 'Create account', account: 'Account' };

/** What a form page may show besides its fields: a refusal or a confirmation, and the name typed. */
export interface FormState {
  error?: string;
  notice?: string;
  username?: string;
}

/**
 * The sign-in, sign-up and account pages, first shown and re-rendered after a refused form (the
 * message and the typed name kept): the controller and AuthFormFilter render through here.
 */
@Injectable()
export class AuthPages {
  constructor(
    private readonly auth: AuthService,
    private readonly pages: PageRenderer,
  ) {}

  async render(res: Response, form: AuthForm, state: FormState = {}, user?: AuthUser, status = 200): Promise<void> {
    const signupOpen = await this.auth.signupOpen();
    const view = form === 'account' ? 'account' : 'login';
    this.pages.render(
      res,
      view,
      {
        pageTitle: TITLES[form],
        mode: form,
        minPassword: MIN_PASSWORD_LENGTH,
        signupOpen,
        signupLocked: this.auth.signupLocked,
        user,
        ...state,
      },
      { status },
    );
  }
}

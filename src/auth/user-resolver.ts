import { Injectable } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { AuthUser } from './auth-user';
import { AuthService } from './auth.service';

/**
 * The port that says who sent a request: HTTP routes of the chat system and the WebSocket upgrade
 * both ask it. The default reads our session cookie (or gives LOCAL_USER with AUTH_MODE=none); a host
 * binds its own (`ChatSystemModule.forRoot({ userResolver })`) to use its auth instead of ours.
 * `id` owns chats and runs: keep it stable and at most 36 characters.
 */
export abstract class UserResolver {
  /** The user of the request, or undefined when it carries no valid credentials. */
  abstract resolve(req: IncomingMessage): Promise<AuthUser | undefined>;
}

/** Our accounts: the session cookie set by /auth/login. */
@Injectable()
export class SessionUserResolver extends UserResolver {
  constructor(private readonly auth: AuthService) {
    super();
  }

  resolve(req: IncomingMessage): Promise<AuthUser | undefined> {
    return this.auth.resolve(req.headers.cookie);
  }
}

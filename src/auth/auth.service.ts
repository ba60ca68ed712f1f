import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { hash, verify } from '@node-rs/argon2';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { dirname, join } from 'node:path';
import { AppError } from '../common/app-error';
import { Environment } from '../config/environment';
import { sqlitePath } from '../storage/database.provider';
import { UserRow, UsersRepository } from '../storage/users.repository';
import { ConnectionRegistry, ConnectionUser } from '../transport/connection-registry';
import { AuthUser, LOCAL_USER, SESSION_COOKIE } from './auth-user';
import { CredentialsDto, LoginDto } from './dto/credentials.dto';
import { isLoopback } from './host-check';
import { isAllowedOrigin, parseAllowedOrigins, readCookie } from './origin';
import { RateLimits } from './rate-limits';

export const SESSION_TTL_MS = 30 * 24 * 3600_000;
/** Wrong passwords for one name from one address before that pair waits (other addresses do not). */
const LOGIN_FAILURES = 10;
/** Wrong passwords from one address, whatever the names, before it waits (password spraying). */
const ADDRESS_FAILURES = 100;
const LOGIN_WINDOW_MS = 15 * 60_000;
const SIGNUP_WINDOW_MS = 3600_000;
const SIGNUP_OPEN = 'signup_open';

export interface IssuedSession {
  user: AuthUser;
  /** The cookie value; only its HMAC is stored. */
  token: string;
}

/** Accounts and sessions. Passwords are argon2id hashes; session tokens are stored as HMACs. */
@Injectable()
export class AuthService implements OnModuleInit {
  private readonly logger = new Logger(AuthService.name);
  private secret!: Buffer;
  private readonly allowedOrigins: string[];
  /** Hash checked for unknown users, so a wrong name costs the same time as a wrong password. */
  private dummyHash?: Promise<string>;

  constructor(
    private readonly users: UsersRepository,
    private readonly env: Environment,
    private readonly registry: ConnectionRegistry,
    private readonly limits: RateLimits,
  ) {
    this.allowedOrigins = parseAllowedOrigins(env.ALLOWED_ORIGINS);
  }

  get enabled(): boolean {
    return this.env.AUTH_MODE === 'local';
  }

  onModuleInit(): void {
    this.secret = this.loadSecret();
    if (!this.enabled && !isLoopback(this.env.HOST)) {
      this.logger.warn(`AUTH_MODE=none on ${this.env.HOST}: anyone who reaches this address owns every chat`);
    }
  }

  /** `ALLOW_SIGNUP=false`: sign-up stays closed whatever the admin's switch says. */
  get signupLocked(): boolean {
    return this.env.ALLOW_SIGNUP === 'false';
  }

  /** Sign-up is open unless `ALLOW_SIGNUP=false` or the admin closed it (the first account can always be made). */
  async signupOpen(): Promise<boolean> {
    return !this.signupLocked && (await this.users.setting(SIGNUP_OPEN)) !== 'false';
  }

  /** The admin's switch: stored, so every instance sees it at once. */
  async setSignupOpen(user: AuthUser, open: boolean): Promise<boolean> {
    if (!user.isAdmin) throw new AppError('forbidden', 'only the admin may open or close sign-up');
    await this.users.setSetting(SIGNUP_OPEN, String(open));
    return this.signupOpen();
  }

  async signup(dto: CredentialsDto, address: string): Promise<IssuedSession> {
    if (!(await this.signupOpen()) && (await this.users.count()) > 0) {
      throw new AppError('forbidden', 'sign-up is closed');
    }
    const wait = await this.limits.consume('signup', address, this.env.SIGNUPS_PER_HOUR, SIGNUP_WINDOW_MS);
    if (wait)
      throw new AppError('rate_limited', `too many new accounts from this address; try again in ${Math.ceil(wait / 60_000)} min`, { retry_after_ms: wait });
    const passwordHash = await hash(dto.password);
    const user = await this.users.create({ id: randomUUID(), username: dto.username, passwordHash });
    if (!user) throw new AppError('conflict', 'that username is taken');
    this.logger.log(`account created${user.is_admin ? ' (admin)' : ''}`);
    return this.issue(user);
  }

  async login(dto: LoginDto, address: string): Promise<IssuedSession> {
    const user = await this.checkPassword(dto.username, dto.password, address);
    if (!user) throw new AppError('unauthorized', 'wrong username or password');
    return this.issue(user);
  }

  /**
   * New password for the signed-in user, given the current one (a wrong one counts as a failed
   * login). Every other session of the user ends and its sockets close; the asking one stays.
   */
  async changePassword(user: AuthUser, current: string, next: string, address: string): Promise<void> {
    if (!user.sessionKey) throw new AppError('forbidden', 'accounts are off (AUTH_MODE=none)');
    if (!(await this.checkPassword(user.username, current, address))) throw new AppError('forbidden', 'the current password is wrong');
    await this.users.setPassword(user.id, await hash(next));
    await this.users.deleteOtherSessions(user.id, user.sessionKey);
    this.closeSockets((other) => other.id === user.id && other.sessionKey !== user.sessionKey, 'password changed');
    this.logger.log('password changed; other sessions ended');
  }

  /**
   * The user when the password is right. Only failures count, per address and name together (a
   * stranger elsewhere cannot lock a known user out) and per address (spraying many names).
   */
  private async checkPassword(username: string, password: string, address: string): Promise<UserRow | undefined> {
    const pair = `${address}\n${username.toLowerCase()}`;
    const wait =
      (await this.limits.wait('login-fail', pair, LOGIN_FAILURES, LOGIN_WINDOW_MS)) ||
      (await this.limits.wait('login-fail-address', address, ADDRESS_FAILURES, LOGIN_WINDOW_MS));
    if (wait) throw new AppError('rate_limited', `too many failed sign-ins; try again in ${Math.ceil(wait / 60_000)} min`, { retry_after_ms: wait });
    const user = await this.users.findByUsername(username);
    const ok = user ? await verify(user.password_hash, password) : await this.burnTime(password);
    if (user && ok) {
      await this.limits.reset('login-fail', pair);
      return user;
    }
    await this.limits.consume('login-fail', pair, LOGIN_FAILURES, LOGIN_WINDOW_MS);
    await this.limits.consume('login-fail-address', address, ADDRESS_FAILURES, LOGIN_WINDOW_MS);
    return undefined;
  }

  /** Ends the session on the server and closes its sockets. */
  async logout(user: AuthUser): Promise<void> {
    if (!user.sessionKey) return;
    await this.users.deleteSession(user.sessionKey);
    this.closeSockets((other) => other.sessionKey === user.sessionKey, 'logged out');
  }

  /** Closes this instance's sockets whose user matches, with 4401 (the session is gone). */
  private closeSockets(match: (user: ConnectionUser) => boolean, reason: string): void {
    for (const connection of [...this.registry.all()]) {
      if (connection.user && match(connection.user)) connection.socket.close(4401, reason);
    }
  }

  /** The user of a request's session cookie; LOCAL_USER when accounts are off. */
  async resolve(cookieHeader: string | undefined): Promise<AuthUser | undefined> {
    if (!this.enabled) return LOCAL_USER;
    const token = readCookie(cookieHeader, SESSION_COOKIE);
    if (!token || token.length > 128) return undefined;
    const key = this.sessionKey(token);
    const found = await this.users.findSession(key, new Date().toISOString());
    if (!found) return undefined;
    return { id: found.user.id, username: found.user.username, isAdmin: found.user.is_admin === 1, sessionKey: key };
  }

  originAllowed(req: IncomingMessage): boolean {
    return isAllowedOrigin(req, this.allowedOrigins);
  }

  private async issue(user: UserRow): Promise<IssuedSession> {
    const token = randomBytes(32).toString('base64url');
    const now = Date.now();
    const key = this.sessionKey(token);
    await this.users.createSession({
      id_hash: key,
      user_id: user.id,
      created_at: new Date(now).toISOString(),
      expires_at: new Date(now + SESSION_TTL_MS).toISOString(),
    });
    void this.users.deleteExpiredSessions(new Date(now).toISOString()).catch(() => undefined);
    return { user: { id: user.id, username: user.username, isAdmin: user.is_admin === 1, sessionKey: key }, token };
  }

  private sessionKey(token: string): string {
    return createHmac('sha256', this.secret).update(token).digest('hex');
  }

  private async burnTime(password: string): Promise<false> {
    this.dummyHash ??= hash(randomBytes(16).toString('hex'));
    await verify(await this.dummyHash, password).catch(() => false);
    return false;
  }

  /** SESSION_SECRET, or one generated once and kept beside the database. */
  private loadSecret(): Buffer {
    if (this.env.SESSION_SECRET) return Buffer.from(this.env.SESSION_SECRET);
    const url = this.env.DATABASE_URL;
    const folder = url.startsWith('sqlite:') && sqlitePath(url) !== ':memory:' ? dirname(sqlitePath(url)) : join(process.cwd(), 'data');
    const file = join(folder, 'session.secret');
    if (existsSync(file)) return readFileSync(file);
    mkdirSync(folder, { recursive: true, mode: 0o700 });
    const secret = randomBytes(32);
    writeFileSync(file, secret, { mode: 0o600 });
    return secret;
  }
}

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
import { ConnectionRegistry } from '../transport/connection-registry';
import { AuthUser, LOCAL_USER, SESSION_COOKIE } from './auth-user';
import { CredentialsDto, LoginDto } from './dto/credentials.dto';
import { isAllowedOrigin, parseAllowedOrigins, readCookie } from './origin';
import { SlidingWindowLimiter } from './sliding-window.limiter';

export const SESSION_TTL_MS = 30 * 24 * 3600_000;
const LOGIN_ATTEMPTS = 10;
const LOGIN_WINDOW_MS = 15 * 60_000;

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
  private readonly loginsByIp = new SlidingWindowLimiter(LOGIN_ATTEMPTS, LOGIN_WINDOW_MS);
  private readonly loginsByName = new SlidingWindowLimiter(LOGIN_ATTEMPTS, LOGIN_WINDOW_MS);
  /** Hash checked for unknown users, so a wrong name costs the same time as a wrong password. */
  private dummyHash?: Promise<string>;

  constructor(
    private readonly users: UsersRepository,
    private readonly env: Environment,
    private readonly registry: ConnectionRegistry,
  ) {
    this.allowedOrigins = parseAllowedOrigins(env.ALLOWED_ORIGINS);
  }

  get enabled(): boolean {
    return this.env.AUTH_MODE === 'local';
  }

  onModuleInit(): void {
    this.secret = this.loadSecret();
    if (!this.enabled && !/^(127\.|::1$|localhost$)/.test(this.env.HOST)) {
      this.logger.warn(`AUTH_MODE=none on ${this.env.HOST}: anyone who reaches this address owns every chat`);
    }
  }

  async signup(dto: CredentialsDto): Promise<IssuedSession> {
    if (this.env.ALLOW_SIGNUP === 'false' && (await this.users.count()) > 0) {
      throw new AppError('forbidden', 'sign-up is closed');
    }
    const passwordHash = await hash(dto.password);
    const user = await this.users.create({ id: randomUUID(), username: dto.username, passwordHash });
    if (!user) throw new AppError('conflict', 'that username is taken');
    this.logger.log(`account created${user.is_admin ? ' (admin)' : ''}`);
    return this.issue(user);
  }

  async login(dto: LoginDto, ip: string): Promise<IssuedSession> {
    const waitIp = this.loginsByIp.consume(ip);
    const waitName = waitIp ? 0 : this.loginsByName.consume(dto.username.toLowerCase());
    if (waitIp || waitName) {
      throw new AppError('rate_limited', 'too many login attempts; try again later', { retry_after_ms: waitIp || waitName });
    }
    const user = await this.users.findByUsername(dto.username);
    const ok = user ? await verify(user.password_hash, dto.password) : await this.burnTime(dto.password);
    if (!user || !ok) throw new AppError('unauthorized', 'wrong username or password');
    this.loginsByName.reset(dto.username.toLowerCase());
    return this.issue(user);
  }

  /** Ends the session on the server and closes its sockets. */
  async logout(user: AuthUser): Promise<void> {
    if (!user.sessionKey) return;
    await this.users.deleteSession(user.sessionKey);
    for (const connection of [...this.registry.all()]) {
      if (connection.user?.sessionKey === user.sessionKey) connection.socket.close(4401, 'logged out');
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
    mkdirSync(folder, { recursive: true });
    const secret = randomBytes(32);
    writeFileSync(file, secret, { mode: 0o600 });
    return secret;
  }
}

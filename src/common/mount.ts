import { WS_PATH } from '../transport/ws-path';

/** `'assistant/'` → `'/assistant'`; `''` and `'/'` → `''`. */
export function normalizePath(path: string | undefined): string {
  const trimmed = (path ?? '').trim().replace(/\/+$/, '');
  if (!trimmed) return '';
  return trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
}

/** Whether `path` is `prefix` or under it, segment by segment (`/api/x` is under `/api`, `/apix` is not). */
export function isUnder(path: string, prefix: string): boolean {
  return !prefix || path === prefix || path.startsWith(`${prefix}/`);
}

/** How a host's `app.setGlobalPrefix(...)` applies to our routes, as Nest will register them. */
export type GlobalPrefixOutcome = 'none' | 'applied' | 'excluded';

/**
 * Where the chat system lives in the HTTP server: `basePath` prefixes its pages, APIs and assets
 * (empty when it owns the server), `wsPath` is where the socket of the `WS_PATH` gateways is served,
 * `loginPath` is our sign-in page, or null when the host's own auth replaces our accounts.
 *
 * `basePath` is the REAL path: the host's global prefix (when Nest puts it before our routes) and
 * then `routePrefix`. It is final once the app initialises (`resolveGlobalPrefix`, called by
 * ChatSystemModule before Nest registers routes), whatever order the host called
 * `setGlobalPrefix` and `configureChatSystem` in; nothing reads it before a request.
 */
export class MountPoint {
  /** The prefix our routes are registered under (`RouterModule`), before any global prefix. */
  readonly routePrefix: string;
  readonly wsPath: string;
  /** A host script every page loads before ours (e.g. one that defines `window.chatSystem.getToken`). */
  readonly pageScript: string | null;
  private readonly accounts: boolean;
  private globalPrefix = '';

  constructor(options: { routePrefix?: string; wsPath?: string; accounts?: boolean; pageScript?: string } = {}) {
    this.routePrefix = normalizePath(options.routePrefix);
    this.wsPath = normalizePath(options.wsPath) || WS_PATH;
    this.accounts = options.accounts !== false;
    this.pageScript = options.pageScript || null;
  }

  get basePath(): string {
    return `${this.globalPrefix}${this.routePrefix}`;
  }

  get loginPath(): string | null {
    return this.accounts ? this.path('/login') : null;
  }

  /** An absolute path of the chat system: `path('/chat')` → `/assistant/chat`. */
  path(path: string): string {
    return `${this.basePath}${path}`;
  }

  /** Whether a request path is one of ours: under our route prefix, or (without one) under one of `own`. */
  owns(path: string, own: readonly string[]): boolean {
    if (this.routePrefix) return isUnder(path, this.basePath);
    return own.some((prefix) => isUnder(path, this.path(prefix)));
  }

  /** Records the global prefix that Nest puts before our routes (`'applied'`), or that it does not. */
  resolveGlobalPrefix(prefix: string, outcome: GlobalPrefixOutcome): void {
    this.globalPrefix = outcome === 'applied' ? normalizePath(prefix) : '';
  }
}

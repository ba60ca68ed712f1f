import { WS_PATH } from '../transport/ws-path';

/** `'assistant/'` → `'/assistant'`; `''` and `'/'` → `''`. */
export function normalizePath(path: string | undefined): string {
  const trimmed = (path ?? '').trim().replace(/\/+$/, '');
  if (!trimmed) return '';
  return trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
}

/**
 * Where the chat system lives in the HTTP server: `basePath` prefixes its pages, APIs and assets
 * (empty when it owns the server), `wsPath` is where the socket of the `WS_PATH` gateways is served,
 * `loginPath` is our sign-in page, or null when the host's own auth replaces our accounts.
 */
export class MountPoint {
  readonly basePath: string;
  readonly wsPath: string;
  readonly loginPath: string | null;

  constructor(options: { routePrefix?: string; wsPath?: string; accounts?: boolean } = {}) {
    this.basePath = normalizePath(options.routePrefix);
    this.wsPath = normalizePath(options.wsPath) || WS_PATH;
    this.loginPath = options.accounts === false ? null : this.path('/login');
  }

  /** An absolute path of the chat system: `path('/chat')` → `/assistant/chat`. */
  path(path: string): string {
    return `${this.basePath}${path}`;
  }
}

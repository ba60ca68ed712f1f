import type { IncomingMessage } from 'node:http';

/**
 * Whether a state-changing request (or an upgrade) may come from where the browser says it comes
 * from. Browsers mark a request two ways: `Sec-Fetch-Site` (set by the browser alone; a page cannot
 * forge it) and `Origin`, which Chromium sends as `null` on a same-origin form POST when the page's
 * referrer policy hides the origin. So: `same-origin` (or `none`: typed by the user) is ours whatever
 * `Origin` says; otherwise `Origin` must be the server's own (http or https plus the request's Host) or
 * listed in ALLOWED_ORIGINS, and `null` is refused. Without either header (scripts, servers) the
 * request is judged by its session alone.
 */
export function isAllowedOrigin(req: IncomingMessage, allowed: string[]): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site === 'same-origin' || site === 'none') return true;
  const origin = req.headers.origin;
  if (origin === undefined) return site === undefined;
  const host = req.headers.host;
  if (host && (origin === `http://${host}` || origin === `https://${host}`)) return true;
  return allowed.includes(origin);
}

export function parseAllowedOrigins(value: string | undefined): string[] {
  return parseList(value).map((o) => o.replace(/\/$/, ''));
}

/** A comma-separated setting as its trimmed, non-empty entries. */
export function parseList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
}

/** One cookie's value from a Cookie header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

import type { IncomingMessage } from 'node:http';

/** The subprotocol our pages offer first on a token socket; the server answers with it alone. */
export const PAGE_SUBPROTOCOL = 'chat-system';
const TOKEN_PROTOCOL = 'bearer.';

/** Whether an offered subprotocol carries a token (`bearer.<token>`): never selected, never echoed. */
export function isTokenProtocol(protocol: string): boolean {
  return protocol.startsWith(TOKEN_PROTOCOL);
}

/**
 * The bearer token of a request, for a host's `UserResolver`: `Authorization: Bearer <token>` (our
 * pages' requests, any API client), or on a WebSocket upgrade the subprotocol `bearer.<token>` our
 * pages offer beside `chat-system` (browsers cannot set headers on a WebSocket; a subprotocol,
 * unlike a query parameter, stays out of URLs and access logs). Never log what it returns.
 */
export function bearerToken(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (auth && /^Bearer\s+/i.test(auth)) return auth.replace(/^Bearer\s+/i, '').trim() || undefined;
  const offered = req.headers['sec-websocket-protocol'];
  if (typeof offered !== 'string') return undefined;
  const entry = offered
    .split(',')
    .map((value) => value.trim())
    .find(isTokenProtocol);
  return entry ? entry.slice(TOKEN_PROTOCOL.length) || undefined : undefined;
}

import { Injectable } from '@nestjs/common';
import { bearerToken } from 'nest-chat-system';
import type { IncomingMessage } from 'node:http';

export interface HostUser {
  id: string;
  name: string;
  role: 'admin' | 'staff';
}

/** The host's own users. A real app checks a session store or a JWT; two fixed tokens will do here. */
@Injectable()
export class UsersService {
  private readonly byToken = new Map<string, HostUser>([
    ['alice-token', { id: 'alice', name: 'Alice', role: 'admin' }],
    ['bob-token', { id: 'bob', name: 'Bob', role: 'staff' }],
  ]);

  /**
   * `Authorization: Bearer <token>` (API clients, and the chat's pages given a token by
   * /assistant/host/chat-token.js), the chat socket's `bearer.<token>` subprotocol (both read by the library's
   * `bearerToken`), or the `host_session` cookie (browsers).
   */
  fromRequest(req: IncomingMessage): HostUser | undefined {
    const token = bearerToken(req) ?? cookie(req.headers.cookie, 'host_session');
    return token ? this.byToken.get(token) : undefined;
  }
}

function cookie(header: string | undefined, name: string): string | undefined {
  for (const part of header?.split(';') ?? []) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return decodeURIComponent(value.join('='));
  }
  return undefined;
}

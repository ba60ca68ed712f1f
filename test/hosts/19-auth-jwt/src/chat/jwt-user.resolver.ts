import { Injectable } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { type AuthUser, bearerToken, UserResolver } from 'nest-chat-system';
import type { IncomingMessage } from 'node:http';
import { jwtConstants } from '../auth/constants.js';

/**
 * The chat's user is the sample's JWT: the `Authorization` header of our pages' requests and of API
 * clients, or the `bearer.<token>` subprotocol of our pages' socket (bearerToken reads both).
 */
@Injectable()
export class JwtUserResolver extends UserResolver {
  constructor(private readonly jwtService: JwtService) {
    super();
  }

  async resolve(req: IncomingMessage): Promise<AuthUser | undefined> {
    const token = bearerToken(req);
    if (!token) return undefined;
    try {
      const payload = await this.jwtService.verifyAsync<{ sub: number; username: string }>(token, { secret: jwtConstants.secret });
      return { id: `jwt-${payload.sub}`, username: payload.username, isAdmin: false };
    } catch {
      return undefined;
    }
  }
}

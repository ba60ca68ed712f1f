import { Injectable } from '@nestjs/common';
import { AuthUser, UserResolver } from 'nest-chat-system';
import type { IncomingMessage } from 'node:http';
import { UsersService } from './users.service';

/** The chat asks this who sends a page request, an API call or a socket upgrade: our users, not its accounts. */
@Injectable()
export class HostUserResolver extends UserResolver {
  constructor(private readonly users: UsersService) {
    super();
  }

  async resolve(req: IncomingMessage): Promise<AuthUser | undefined> {
    const user = this.users.fromRequest(req);
    return user && { id: user.id, username: user.name, isAdmin: user.role === 'admin' };
  }
}

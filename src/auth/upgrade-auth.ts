import { Injectable } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { Environment } from '../config/environment';
import { ConnectionRegistry } from '../transport/connection-registry';
import type { UpgradeVerdict } from '../transport/upgrade-verdict';
import { AuthService } from './auth.service';
import { HostCheck } from './host-check';
import { UserResolver } from './user-resolver';

/** The WebSocket upgrade check: Host (421, as on HTTP), Origin, then the user (through the UserResolver port), then the per-user socket cap. */
@Injectable()
export class UpgradeAuth {
  constructor(
    private readonly auth: AuthService,
    private readonly users: UserResolver,
    private readonly registry: ConnectionRegistry,
    private readonly env: Environment,
    private readonly hosts: HostCheck,
  ) {}

  readonly authenticate = async (req: IncomingMessage): Promise<UpgradeVerdict> => {
    if (!this.hosts.allows(req)) return { ok: false, status: 421, message: 'Misdirected Request' };
    if (!this.auth.originAllowed(req)) return { ok: false, status: 403, message: 'Forbidden origin' };
    const user = await this.users.resolve(req);
    if (!user) return { ok: false, status: 401, message: 'Unauthorized' };
    if (this.registry.countFor(user.id) >= this.env.WS_MAX_SOCKETS_PER_USER) return { ok: false, status: 429, message: 'Too many connections' };
    return { ok: true, user };
  };
}

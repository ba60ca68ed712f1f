import { CanActivate, ExecutionContext, Injectable, UnauthorizedException } from '@nestjs/common';
import type { Request } from 'express';
import { HostUser, UsersService } from './users.service';

export type HostRequest = Request & { hostUser?: HostUser };

/** The host's own guard, on its own controllers. */
@Injectable()
export class HostAuthGuard implements CanActivate {
  constructor(private readonly users: UsersService) {}

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<HostRequest>();
    req.hostUser = this.users.fromRequest(req);
    if (!req.hostUser) throw new UnauthorizedException();
    return true;
  }
}

import { Module } from '@nestjs/common';
import { HostAuthGuard } from './host-auth.guard';
import { UsersService } from './users.service';

@Module({
  providers: [UsersService, HostAuthGuard],
  exports: [UsersService, HostAuthGuard],
})
export class UsersModule {}

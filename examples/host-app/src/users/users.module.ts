import { Module } from '@nestjs/common';
import { ChatTokenController } from './chat-token.controller';
import { HostAuthGuard } from './host-auth.guard';
import { UsersService } from './users.service';

@Module({
  controllers: [ChatTokenController],
  providers: [UsersService, HostAuthGuard],
  exports: [UsersService, HostAuthGuard],
})
export class UsersModule {}

import { Module } from '@nestjs/common';
import { ChatSystemModule } from 'nest-chat-system';
import { AuthModule } from './auth/auth.module.js';
import { IS_PUBLIC_KEY } from './auth/decorators/public.decorator.js';
import { JwtUserResolver } from './chat/jwt-user.resolver.js';
import { UsersModule } from './users/users.module.js';

// Mounting the chat (MOUNT_CHAT=0: the sample exactly as it is, for the comparison).
const chat =
  process.env.MOUNT_CHAT === '0'
    ? []
    : [
        ChatSystemModule.forRoot({
          routePrefix: '/assistant',
          wsPath: '/assistant/ws',
          envPrefix: 'CHAT_',
          // Token users: the sample's JWT names the chat's user.
          userResolver: JwtUserResolver,
          // The sample's global AuthGuard lets our public routes (health, share pages) and frames through.
          hostPublicMetadata: { key: IS_PUBLIC_KEY },
          // Defines window.chatSystem.getToken() for our pages.
          pageScript: '/host/chat-token.js',
        }),
      ];

@Module({
  imports: [AuthModule, UsersModule, ...chat],
})
export class AppModule {}

import { Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { ChatSystemModule } from 'nest-chat-system';
import { OrdersModule } from './orders/orders.module';
import { SummarizeModule } from './summarize/summarize.module';
import { HostUserResolver } from './users/host-user.resolver';
import { UsersModule } from './users/users.module';

@Module({
  imports: [
    ConfigModule.forRoot({ isGlobal: true }),
    UsersModule,
    OrdersModule,
    // The chat: pages and APIs under /assistant, its socket at /assistant/ws, our users.
    ChatSystemModule.forRootAsync({
      routePrefix: '/assistant',
      wsPath: '/assistant/ws',
      userResolver: HostUserResolver,
      imports: [UsersModule],
      // Our pages load this script first: it hands them a token (src/users/chat-token.controller.ts).
      pageScript: '/assistant/host/chat-token.js',
      // With a global guard of ours that lets `@Public()` routes through (Nest's JWT sample), name its
      // key and the chat's public routes (health, share pages) and socket frames pass it:
      // hostPublicMetadata: { key: IS_PUBLIC_KEY },
      inject: [ConfigService],
      // Only these settings count: the host's own DATABASE_URL, PORT, … are not the chat's.
      useFactory: (config: ConfigService) => ({
        settings: {
          DATABASE_URL: config.get<string>('ASSISTANT_DATABASE_URL', 'sqlite:./data/assistant.db'),
          DEEPSEEK_BASE_URL: config.get<string>('ASSISTANT_BASE_URL', 'https://api.deepseek.com'),
          DEEPSEEK_API_KEY: config.get<string>('ASSISTANT_API_KEY'),
          DEEPSEEK_MODEL: config.get<string>('ASSISTANT_MODEL', 'deepseek-v4-flash'),
        },
      }),
    }),
    // A message type of our own on the same socket.
    SummarizeModule,
  ],
})
export class AppModule {}

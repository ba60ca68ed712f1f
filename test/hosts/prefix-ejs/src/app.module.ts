import { Module } from '@nestjs/common';
import { ChatSystemModule } from 'nest-chat-system';
import { ItemsController } from './items/items.controller';
import { PagesController } from './pages.controller';

@Module({
  imports: [
    // Relative to the global prefix ('assistant' → /api/assistant), or the real path itself
    // ('api/assistant', PREFIX_ORDER=after): never /api/api/assistant.
    ChatSystemModule.forRoot({
      routePrefix: process.env.PREFIX_ORDER === 'after' ? 'api/assistant' : 'assistant',
      wsPath: '/api/assistant/ws',
      envPrefix: 'CHAT_',
    }),
  ],
  controllers: [PagesController, ItemsController],
})
export class AppModule {}

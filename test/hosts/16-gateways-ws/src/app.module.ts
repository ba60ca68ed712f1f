import { Module } from '@nestjs/common';
import { ChatSystemModule } from 'nest-chat-system';
import { EventsModule } from './events/events.module';

@Module({
  imports: [
    EventsModule,
    // Mounting the chat: under /assistant, its settings from CHAT_* variables only.
    ChatSystemModule.forRoot({ routePrefix: '/assistant', wsPath: '/assistant/ws', envPrefix: 'CHAT_' }),
  ],
})
export class AppModule {}

import { Module } from '@nestjs/common';
import { GenerationModule } from '../generation/generation.module';
import { ChatPagesController } from './chat-pages.controller';
import { ChatGateway } from './chat.gateway';
import { ChatService } from './chat.service';
import { ChatsApiController } from './chats-api.controller';

@Module({
  imports: [GenerationModule],
  controllers: [ChatPagesController, ChatsApiController],
  providers: [ChatGateway, ChatService],
  exports: [ChatService],
})
export class ChatModule {}

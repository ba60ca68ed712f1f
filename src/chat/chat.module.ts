import { Module } from '@nestjs/common';
import { GenerationModule } from '../generation/generation.module';
import { ChatLimits } from './chat-limits';
import { ChatPagesController } from './chat-pages.controller';
import { ChatGateway } from './chat.gateway';
import { ChatService } from './chat.service';
import { ChatsApiController } from './chats-api.controller';
import { FilesController } from './files.controller';
import { InfoController } from './info.controller';
import { SharePageController } from './share-page.controller';
import { TitleService } from './title.service';

@Module({
  imports: [GenerationModule],
  controllers: [ChatPagesController, ChatsApiController, FilesController, InfoController, SharePageController],
  providers: [ChatGateway, ChatService, ChatLimits, TitleService],
  exports: [ChatService],
})
export class ChatModule {}

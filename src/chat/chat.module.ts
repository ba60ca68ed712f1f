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
import { ShareService } from './share.service';
import { TitleService } from './title.service';
import { TurnRequests } from './turn-request';
import { TurnService } from './turn.service';

@Module({
  imports: [GenerationModule],
  controllers: [ChatPagesController, ChatsApiController, FilesController, InfoController, SharePageController],
  providers: [ChatGateway, ChatService, TurnService, TurnRequests, ShareService, ChatLimits, TitleService],
  exports: [ChatService, TurnService, ShareService],
})
export class ChatModule {}

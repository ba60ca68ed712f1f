import { Body, Controller, Delete, Get, HttpCode, Param, Patch } from '@nestjs/common';
import { assertUuid } from './chat-pages.controller';
import { ChatService } from './chat.service';
import { RenameChatDto } from './dto/rename-chat.dto';

@Controller('api/chats')
export class ChatsApiController {
  constructor(private readonly chat: ChatService) {}

  @Get()
  async list() {
    return { chats: await this.chat.listChats() };
  }

  @Get(':uuid')
  get(@Param('uuid') id: string) {
    assertUuid(id);
    return this.chat.getChat(id);
  }

  @Patch(':uuid')
  rename(@Param('uuid') id: string, @Body() dto: RenameChatDto) {
    assertUuid(id);
    return this.chat.renameChat(id, dto.title);
  }

  @Delete(':uuid')
  @HttpCode(204)
  async remove(@Param('uuid') id: string): Promise<void> {
    assertUuid(id);
    await this.chat.deleteChat(id);
  }
}

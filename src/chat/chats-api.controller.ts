import { Body, Controller, Delete, Get, HttpCode, Param, Patch } from '@nestjs/common';
import { AuthUser } from '../auth/auth-user';
import { CurrentUser } from '../auth/auth.decorators';
import { assertUuid } from './chat-pages.controller';
import { ChatService } from './chat.service';
import { RenameChatDto } from './dto/rename-chat.dto';

@Controller('api/chats')
export class ChatsApiController {
  constructor(private readonly chat: ChatService) {}

  @Get()
  async list(@CurrentUser() user: AuthUser) {
    return { chats: await this.chat.listChats(user.id) };
  }

  @Get(':uuid')
  get(@CurrentUser() user: AuthUser, @Param('uuid') id: string) {
    assertUuid(id);
    return this.chat.getChat(id, user.id);
  }

  @Patch(':uuid')
  rename(@CurrentUser() user: AuthUser, @Param('uuid') id: string, @Body() dto: RenameChatDto) {
    assertUuid(id);
    return this.chat.renameChat(id, dto.title, user.id);
  }

  @Delete(':uuid')
  @HttpCode(204)
  async remove(@CurrentUser() user: AuthUser, @Param('uuid') id: string): Promise<void> {
    assertUuid(id);
    await this.chat.deleteChat(id, user.id);
  }
}

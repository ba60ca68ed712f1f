import { Body, Controller, Delete, Get, HttpCode, Patch, Post, Query, Res } from '@nestjs/common';
import type { Response } from 'express';
import { AuthUser } from '../auth/auth-user';
import { CurrentUser } from '../auth/auth.decorators';
import { AppError } from '../common/app-error';
import { Environment } from '../config/environment';
import { exportFileName, parseImport, toExport, toMarkdown } from './chat-transfer';
import { UuidParam } from '../common/uuid';
import { ChatService } from './chat.service';
import { ShareService } from './share.service';
import { RenameChatDto } from './dto/rename-chat.dto';

@Controller('api')
export class ChatsApiController {
  constructor(
    private readonly chat: ChatService,
    private readonly shares: ShareService,
    private readonly env: Environment,
  ) {}

  @Get('chats')
  async list(@CurrentUser() user: AuthUser) {
    return { chats: await this.chat.listChats(user.id) };
  }

  @Post('chats/import')
  importChat(@CurrentUser() user: AuthUser, @Body() body: unknown) {
    return this.chat.importChat(parseImport(body, this.env.IMPORT_MAX_MESSAGES), user.id);
  }

  @Get('chats/:uuid')
  get(@CurrentUser() user: AuthUser, @UuidParam('uuid') id: string) {
    return this.chat.getChat(id, user.id);
  }

  @Patch('chats/:uuid')
  rename(@CurrentUser() user: AuthUser, @UuidParam('uuid') id: string, @Body() dto: RenameChatDto) {
    return this.chat.renameChat(id, dto.title, user.id);
  }

  @Delete('chats/:uuid')
  @HttpCode(204)
  async remove(@CurrentUser() user: AuthUser, @UuidParam('uuid') id: string): Promise<void> {
    await this.chat.deleteChat(id, user.id);
  }

  /** The chat as a download: `format=json` (re-importable) or `format=md`. */
  @Get('chats/:uuid/export')
  async export(@CurrentUser() user: AuthUser, @UuidParam('uuid') id: string, @Query('format') format: string, @Res() res: Response) {
    if (format !== 'json' && format !== 'md') throw new AppError('invalid_message', 'format must be json or md');
    // JSON keeps every version (replaced_messages); Markdown is the chat as it reads now.
    const chat = format === 'json' ? await this.chat.exportChat(id, user.id) : await this.chat.getChat(id, user.id);
    res.attachment(exportFileName(chat, format));
    if (format === 'json') res.type('application/json').send(JSON.stringify(toExport(chat), null, 2));
    else res.type('text/markdown; charset=utf-8').send(toMarkdown(chat));
  }

  @Post('chats/:uuid/share')
  share(@CurrentUser() user: AuthUser, @UuidParam('uuid') id: string) {
    return this.shares.share(id, user.id);
  }

  @Delete('chats/:uuid/share')
  @HttpCode(204)
  async unshare(@CurrentUser() user: AuthUser, @UuidParam('uuid') id: string): Promise<void> {
    await this.shares.unshare(id, user.id);
  }

  /** One message, current or a previous version (of a regenerated answer; an edited user message comes with `following`). */
  @Get('messages/:uuid')
  message(@CurrentUser() user: AuthUser, @UuidParam('uuid', 'message') id: string) {
    return this.chat.getMessage(id, user.id);
  }

  @Get('search')
  async search(@CurrentUser() user: AuthUser, @Query('q') q: unknown) {
    if (typeof q !== 'string' || !q.trim()) throw new AppError('invalid_message', 'q: a search text is required');
    return { results: await this.chat.search(q.slice(0, 500), user.id) };
  }
}

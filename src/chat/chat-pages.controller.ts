import { Controller, Get, Header, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { AuthUser } from '../auth/auth-user';
import { CurrentUser } from '../auth/auth.decorators';
import { PageRenderer } from '../common/page-renderer';
import { UuidParam } from '../common/uuid';
import { Environment } from '../config/environment';
import { LlmProvider } from '../llm/llm.provider';
import { ChatService, ChatView, MessageView } from './chat.service';

/** The chat pages: the whole page, or only `chat_content` for an HTMX swap. */
@Controller()
export class ChatPagesController {
  constructor(
    private readonly chat: ChatService,
    private readonly llm: LlmProvider,
    private readonly pages: PageRenderer,
    private readonly env: Environment,
  ) {}

  @Get('chat')
  @Header('Vary', 'HX-Request')
  async newChat(@CurrentUser() user: AuthUser, @Req() req: Request, @Res() res: Response): Promise<void> {
    await this.render(user, req, res, null, []);
  }

  @Get('chat/:uuid')
  @Header('Vary', 'HX-Request')
  async showChat(@CurrentUser() user: AuthUser, @UuidParam('uuid') id: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    const { messages, ...chat } = await this.chat.getChat(id, user.id);
    await this.render(user, req, res, chat, messages);
  }

  private async render(user: AuthUser, req: Request, res: Response, chat: (ChatView & { settings?: object }) | null, messages: MessageView[]): Promise<void> {
    const chats = (await this.chat.listChats(user.id)).map((c) => ({ id: c.id, title: c.title, updated_at: c.updated_at, active: c.id === chat?.id }));
    const model = {
      pageTitle: chat ? chat.title : 'New chat',
      // The chat's stored settings, for the page's model picker, thinking toggle and settings panel.
      chat: chat ? { id: chat.id, title: chat.title, settings: JSON.stringify(chat.settings ?? {}) } : null,
      chats,
      messages: messages.map((m) => ({ ...m, reasoning: m.reasoning ?? null, seq: m.seq ?? null })),
      model: this.llm.defaultModel,
      modelConfigured: this.llm.isConfigured(),
      // The settings popover checks max tokens against the server's own limit (MAX_TOKENS_LIMIT).
      maxTokensLimit: this.env.MAX_TOKENS_LIMIT,
      maxTokensLimitText: this.env.MAX_TOKENS_LIMIT.toLocaleString('en'),
      user: user.sessionKey ? { username: user.username } : null,
    };
    this.pages.render(res, 'layouts/chat_content', model, { layout: wantsPartial(req) ? false : 'layouts/chat_base' });
  }
}

/** HTMX asks for the partial, unless it restores history or asks for the full page. */
export function wantsPartial(req: Request): boolean {
  return req.get('HX-Request') === 'true' && req.get('HX-History-Restore-Request') !== 'true' && req.get('HX-Request-Type') !== 'full';
}

import { Controller, Get, Param, Res } from '@nestjs/common';
import type { Response } from 'express';
import { Public } from '../auth/auth.decorators';
import { PageRenderer } from '../common/page-renderer';
import { ShareService } from './share.service';

/** `/share/TOKEN`: one chat, read-only, for anyone with the link — no socket, nothing else. */
@Controller('share')
export class SharePageController {
  constructor(
    private readonly shares: ShareService,
    private readonly pages: PageRenderer,
  ) {}

  @Public()
  @Get(':token')
  async show(@Param('token') token: string, @Res() res: Response): Promise<void> {
    const chat = await this.shares.sharedChat(token);
    res.set('Cache-Control', 'no-store');
    res.set('X-Robots-Tag', 'noindex');
    this.pages.render(res, 'share', { pageTitle: chat.title, chat, messages: chat.messages });
  }
}

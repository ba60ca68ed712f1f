import { Controller, Get, Header } from '@nestjs/common';

/**
 * The script the chat's pages load first (`pageScript` in app.module.ts): it hands them the token a
 * browser of ours keeps (here in sessionStorage, `host_token`), which they send as a bearer token on
 * their requests and socket. Without one they fall back on the `host_session` cookie. It sits beside
 * the chat, under /assistant (no route of the chat's is named `host`).
 */
@Controller('assistant/host')
export class ChatTokenController {
  @Get('chat-token.js')
  @Header('Content-Type', 'text/javascript; charset=utf-8')
  @Header('Cache-Control', 'no-cache')
  script(): string {
    return "window.chatSystem = { getToken: () => sessionStorage.getItem('host_token') };\n";
  }
}

import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { ConnectionRegistry, connectionIdOf, Frame, FrameGateway, MessageHandler } from 'nest-chat-system';
import { lastValueFrom, tap } from 'rxjs';
import type { WebSocket } from 'ws';
import { ChatSummarizer } from './chat-summarizer';
import { SummarizeChatDto } from './summarize-chat.dto';

type SummarizeFrame = SummarizeChatDto & { type: 'summarize_chat' };

/**
 * `summarize_chat` on the chat's socket: `chat_summary_delta` frames while the model writes, then one
 * `chat_summary`. A bad frame or another user's chat gets the usual `error` frame with the request's id.
 */
@FrameGateway()
export class SummarizeGateway implements MessageHandler<SummarizeFrame> {
  constructor(
    private readonly summarizer: ChatSummarizer,
    private readonly registry: ConnectionRegistry,
  ) {}

  @SubscribeMessage('summarize_chat')
  onSummarize(@MessageBody() dto: SummarizeChatDto, @ConnectedSocket() socket: WebSocket): Promise<void> {
    return this.handleMessage({ ...dto, type: 'summarize_chat' }, connectionIdOf(socket));
  }

  async handleMessage(msg: SummarizeFrame, connectionId: string): Promise<void> {
    const { id: userId } = this.registry.userOf(connectionId);
    const reply = { id: msg.id, chat_id: msg.chat_id };
    let summary = '';
    const pieces = this.summarizer.summarize(msg.chat_id, userId).pipe(
      tap((text) => {
        summary += text;
        this.registry.send(connectionId, { type: 'chat_summary_delta', ...reply, text });
      }),
    );
    await lastValueFrom(pieces, { defaultValue: '' });
    this.registry.send(connectionId, { type: 'chat_summary', ...reply, summary });
  }

  broadcast(msg: Frame): void {
    this.registry.broadcast(msg);
  }
}

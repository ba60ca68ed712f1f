import { ConnectionRegistry, Frame, FrameGateway, MessageHandler, OnFrame } from 'nest-chat-system';
import { lastValueFrom, tap } from 'rxjs';
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

  @OnFrame('summarize_chat', SummarizeChatDto)
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

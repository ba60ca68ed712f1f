import { ConnectionRegistry } from '../transport/connection-registry';
import { Fanout } from '../transport/fanout';
import { FrameGateway, OnFrame } from '../transport/frame-gateway.decorator';
import { Frame } from '../transport/frames';
import { MessageHandler } from '../transport/message-handler';
import { ChatService, chatRoom } from './chat.service';
import { TurnService } from './turn.service';
import { RegenerateDto, ResumeDto, SubscribeDto } from './dto/control.dto';
import { UserMessageDto } from './dto/user-message.dto';

type ChatFrame =
  | (UserMessageDto & { type: 'user_message' })
  | (RegenerateDto & { type: 'regenerate' })
  | (ResumeDto & { type: 'resume' })
  | (SubscribeDto & { type: 'subscribe' });

/** Chat frames on the socket: validated DTO in, one service call. */
@FrameGateway()
export class ChatGateway implements MessageHandler<ChatFrame> {
  constructor(
    private readonly chat: ChatService,
    private readonly turns: TurnService,
    private readonly registry: ConnectionRegistry,
    private readonly fanout: Fanout,
  ) {}

  /** Every chat frame, validated against its type's DTO, arrives here with its connection's id. */
  @OnFrame('user_message', UserMessageDto)
  @OnFrame('regenerate', RegenerateDto)
  @OnFrame('resume', ResumeDto)
  @OnFrame('subscribe', SubscribeDto)
  async handleMessage(msg: ChatFrame, connectionId: string): Promise<void> {
    const userId = this.registry.userOf(connectionId).id;
    switch (msg.type) {
      case 'user_message':
        return this.turns.userMessage(msg, connectionId, userId);
      case 'regenerate':
        return this.turns.regenerate(msg, connectionId, userId);
      case 'resume':
        return this.chat.resume(msg, connectionId, userId);
      case 'subscribe':
        this.registry.send(connectionId, await this.chat.subscribe(msg, connectionId, userId));
        return;
    }
  }

  /** To the chat's viewers when the frame names a chat, else to every connection. */
  broadcast(msg: Frame): void {
    if (typeof msg.chat_id === 'string') this.fanout.publish(chatRoom(msg.chat_id), msg);
    else this.registry.broadcast(msg);
  }
}

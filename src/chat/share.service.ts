import { Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { AppError } from '../common/app-error';
import { GenerationService } from '../generation/generation.service';
import { ChatsRepository } from '../storage/chats.repository';
import { MessagesRepository } from '../storage/messages.repository';
import { SharesRepository } from '../storage/shares.repository';
import { ChatService } from './chat.service';
import { type ChatView, type MessageView, toChatView, toMessageView } from './chat-views';

/** Read-only share links (`/share/<token>`) to one chat. */
@Injectable()
export class ShareService {
  constructor(
    private readonly chatService: ChatService,
    private readonly shares: SharesRepository,
    private readonly chats: ChatsRepository,
    private readonly messages: MessagesRepository,
    private readonly generations: GenerationService,
  ) {}

  /** A read-only link to one chat; every call makes a new one. */
  async share(chatId: string, userId: string): Promise<{ token: string; url: string }> {
    await this.chatService.ownedChat(chatId, userId);
    const token = randomBytes(24).toString('base64url');
    await this.shares.insert({ token, chat_id: chatId });
    return { token, url: `/share/${token}` };
  }

  async unshare(chatId: string, userId: string): Promise<void> {
    await this.chatService.ownedChat(chatId, userId);
    await this.shares.deleteByChat(chatId);
  }

  /** The chat behind a share link, for anyone holding it; nothing else of the owner's. */
  async sharedChat(token: string): Promise<ChatView & { messages: MessageView[] }> {
    const share = /^[A-Za-z0-9_-]{16,64}$/.test(token) ? await this.shares.findByToken(token) : undefined;
    const chat = share ? await this.chats.findById(share.chat_id) : undefined;
    if (!chat) throw new AppError('not_found', 'no such shared chat');
    const rows = await this.messages.listByChat(chat.id);
    return { ...toChatView(chat), messages: rows.map((row) => toMessageView(row, row.status === 'streaming' ? this.generations.find(row.id) : undefined)) };
  }
}

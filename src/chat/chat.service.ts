import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { AppError } from '../common/app-error';
import { storedEndFrame } from '../generation/generation';
import { GenerationService } from '../generation/generation.service';
import { type Chat, type ChatSettings, ChatsRepository, newChat } from '../storage/chats.repository';
import { FilesRepository } from '../storage/files.repository';
import { type Message, MessagesRepository, newMessage } from '../storage/messages.repository';
import { ConnectionRegistry } from '../transport/connection-registry';
import { Fanout } from '../transport/fanout';
import type { Frame } from '../transport/frames';
import { ChatLimits } from './chat-limits';
import type { ImportedMessage } from './chat-transfer';
import { chatRoom, type ChatView, type MessageView, toChatView, toMessageView, withId } from './chat-views';
import type { ResumeDto, SubscribeDto } from './dto/control.dto';

export { chatRoom } from './chat-views';
export type { ChatView, MessageView } from './chat-views';

/**
 * A user's chats: reading, renaming, deleting, importing and searching them, and watching one (a
 * socket's `subscribe` and `resume`). Every read checks the owner: another user's chat is `not_found`.
 * Turns are `TurnService`'s, share links `ShareService`'s.
 */
@Injectable()
export class ChatService {
  constructor(
    private readonly chats: ChatsRepository,
    private readonly messages: MessagesRepository,
    private readonly files: FilesRepository,
    private readonly generations: GenerationService,
    private readonly fanout: Fanout,
    private readonly registry: ConnectionRegistry,
    private readonly limits: ChatLimits,
  ) {}

  /** Replays what the viewer missed, then it watches the chat live. */
  async resume(dto: ResumeDto, connectionId: string, userId: string): Promise<void> {
    const message = await this.messages.findOwned(dto.message_id, userId);
    if (!message || message.role !== 'assistant') throw new AppError('not_found', 'no such message', { message_id: dto.message_id });
    // Live frames of this message wait while the replay is read, then follow it in order.
    this.registry.hold(connectionId, message.id);
    try {
      await this.fanout.join(connectionId, chatRoom(message.chat_id));
      if (await this.generations.replay(connectionId, message.id, dto.after_seq)) return;
      const fresh = (await this.messages.findById(message.id)) ?? message;
      this.registry.sendReplay(connectionId, storedEndFrame(fresh));
    } finally {
      this.registry.release(connectionId, message.id);
    }
  }

  async subscribe(dto: SubscribeDto, connectionId: string, userId: string): Promise<Frame> {
    await this.ownedChat(dto.chat_id, userId);
    await this.fanout.join(connectionId, chatRoom(dto.chat_id));
    return withId({ type: 'subscribed', chat_id: dto.chat_id }, dto.id);
  }

  async listChats(userId: string): Promise<ChatView[]> {
    return (await this.chats.list(userId)).map(toChatView);
  }

  async getChat(id: string, userId: string): Promise<ChatView & { settings: ChatSettings; messages: MessageView[] }> {
    const chat = await this.ownedChat(id, userId);
    const rows = await this.messages.listByChat(id);
    const fileIds = rows.flatMap((row) => row.attachments);
    const files = new Map((await this.files.findFiles(fileIds, userId)).map((f) => [f.id, { id: f.id, name: f.name, size: f.size }]));
    const messages = rows.map((row) => {
      const view = this.toMessageView(row);
      if (row.attachments.length) view.attachments = row.attachments.flatMap((fid) => files.get(fid) ?? []);
      return view;
    });
    return { ...toChatView(chat), settings: chat.settings, messages };
  }

  /**
   * One message of the user's, current or a previous version. An edited user message (a previous
   * version of the message that replaced it) comes with `following`: the messages that followed it
   * in its version of the chat, oldest first.
   */
  async getMessage(id: string, userId: string): Promise<MessageView & { chat_id: string; replaced_by: string | null; following?: MessageView[] }> {
    const row = await this.messages.findOwned(id, userId);
    if (!row) throw new AppError('not_found', 'no such message', { message_id: id });
    const view = { ...this.toMessageView(row), chat_id: row.chat_id, replaced_by: row.replaced_by };
    if (row.role !== 'user' || !row.replaced_by) return view;
    return { ...view, following: (await this.messages.listBranchAfter(row)).map((m) => this.toMessageView(m)) };
  }

  /**
   * The JSON export: the chat as `getChat` shows it (its current line, what an import reads), and
   * `replaced_messages`: every message off that line (answers a regenerate replaced, edited user
   * messages and the branches that followed them), oldest first, each with its `replaced_by`.
   */
  async exportChat(
    id: string,
    userId: string,
  ): Promise<Awaited<ReturnType<ChatService['getChat']>> & { replaced_messages: (MessageView & { replaced_by: string | null })[] }> {
    const chat = await this.getChat(id, userId);
    const replaced = (await this.messages.listReplaced(id)).map((m) => ({ ...this.toMessageView(m), replaced_by: m.replaced_by }));
    return { ...chat, replaced_messages: replaced };
  }

  /** A new chat holding an export's messages (at most IMPORTS_PER_HOUR); all of it or nothing shows. */
  async importChat(data: { title: string; messages: ImportedMessage[] }, userId: string): Promise<{ id: string }> {
    await this.limits.consumeImport(userId);
    const chat = newChat({ id: randomUUID(), userId, title: data.title });
    // Made a batch at a time, as they are written.
    const messages = (function* () {
      for (const m of data.messages) {
        const status = m.role === 'user' ? 'complete' : m.status;
        const message = newMessage({ id: randomUUID(), chat_id: chat.id, role: m.role, content: m.content, status, omitted_turns: m.omitted_turns });
        yield { ...message, reasoning: m.reasoning };
      }
    })();
    await this.chats.insertImported(chat, messages);
    return { id: chat.id };
  }

  async search(query: string, userId: string) {
    const hits = await this.messages.search(userId, query);
    return hits.map(({ chat_id, message_id, title, snippet }) => ({ chat_id, message_id, title, snippet }));
  }

  async renameChat(id: string, title: string, userId: string): Promise<ChatView> {
    await this.ownedChat(id, userId);
    const chat = (await this.chats.update(id, { title: title.trim() || 'Untitled' }))!;
    this.fanout.publish(chatRoom(id), { type: 'chat_updated', chat_id: id, title: chat.title });
    return toChatView(chat);
  }

  async deleteChat(id: string, userId: string): Promise<void> {
    await this.ownedChat(id, userId);
    for (const row of await this.messages.listByChat(id)) {
      if (row.status === 'streaming') this.generations.stop(row.id);
    }
    await this.chats.delete(id);
  }

  /** The chat when it is this user's; another user's chat is as unknown as a missing one. */
  async ownedChat(id: string, userId: string): Promise<Chat> {
    const chat = await this.chats.findOwned(id, userId);
    if (!chat) throw new AppError('not_found', 'no such chat', { chat_id: id });
    return chat;
  }

  /** A message as stored, with the live text where it is still streaming in this process. */
  private toMessageView(row: Message): MessageView {
    return toMessageView(row, row.status === 'streaming' ? this.generations.find(row.id) : undefined);
  }
}

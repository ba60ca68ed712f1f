import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { RateLimits } from '../auth/rate-limits';
import { AppError } from '../common/app-error';
import { Environment } from '../config/environment';
import { GenerationService } from '../generation/generation.service';
import { LlmProvider } from '../llm/llm.provider';
import { ChatRow, ChatsRepository } from '../storage/chats.repository';
import { MessageRow, MessagesRepository } from '../storage/messages.repository';
import { ConnectionRegistry } from '../transport/connection-registry';
import { Fanout } from '../transport/fanout';
import { Frame } from '../transport/frames';
import { buildContext, ChatSettings, mergeSettings, titleFrom } from './context';
import { ResumeDto, SubscribeDto } from './dto/control.dto';
import { UserMessageDto } from './dto/user-message.dto';

/** The fanout room of a chat: every connection watching it. */
export const chatRoom = (chatId: string): string => `chat:${chatId}`;

export interface ChatView {
  id: string;
  title: string;
  created_at: string;
  updated_at: string;
}

export interface MessageView {
  id: string;
  role: 'user' | 'assistant';
  content: string;
  reasoning?: string | null;
  status: string;
  created_at: string;
  /** Last seq included in `content`/`reasoning` (assistant messages). */
  seq?: number;
  model?: string | null;
}

/** The rules of a chat turn; transports (gateway, controllers) only call in. */
@Injectable()
export class ChatService {
  constructor(
    private readonly chats: ChatsRepository,
    private readonly messages: MessagesRepository,
    private readonly generations: GenerationService,
    private readonly llm: LlmProvider,
    private readonly fanout: Fanout,
    private readonly registry: ConnectionRegistry,
    private readonly env: Environment,
    private readonly limits: RateLimits,
  ) {}

  async userMessage(dto: UserMessageDto, connectionId: string, userId: string): Promise<void> {
    if (!this.generations.isAccepting) throw new AppError('shutting_down', 'the server is shutting down; try again shortly');
    if (dto.attachments?.length) {
      throw new AppError('not_found', `attachment ${dto.attachments[0]} does not exist`, { field: 'attachments' });
    }
    const existing = dto.chat_id ? await this.requireChat(dto.chat_id, userId) : undefined;
    this.limits.checkRunning(this.generations.runningFor(userId));
    this.limits.consumeMessage(userId);
    const requestId = dto.id;
    const chat = existing ?? (await this.openChat(dto, connectionId, userId));
    const settings = mergeSettings(JSON.parse(chat.settings) as ChatSettings, dto.options);
    if (dto.options) await this.chats.update(chat.id, { settings });
    const room = chatRoom(chat.id);
    this.registry.join(connectionId, room);

    const user = await this.messages.insert({ id: randomUUID(), chat_id: chat.id, role: 'user', content: dto.content, status: 'complete' });
    this.publish(room, requestId, { type: 'user_message', chat_id: chat.id, message_id: user.id, content: user.content, created_at: user.created_at });
    await this.chats.touch(chat.id);

    if (!this.llm.isConfigured()) {
      throw new AppError('model_not_configured', 'no model API key is configured (set DEEPSEEK_API_KEY)', { chat_id: chat.id });
    }
    const history = await this.messages.listByChat(chat.id);
    const context = buildContext(history, settings.system_prompt, this.env.CONTEXT_TOKENS);
    const model = settings.model ?? this.llm.defaultModel;
    const assistant = await this.messages.insert({
      id: randomUUID(),
      chat_id: chat.id,
      role: 'assistant',
      content: '',
      status: 'streaming',
      model,
      request_id: requestId ?? null,
    });
    this.generations.start({
      chatId: chat.id,
      messageId: assistant.id,
      requestId,
      model,
      room,
      ownerId: userId,
      request: {
        messages: context.messages,
        model,
        thinking: settings.thinking,
        temperature: settings.temperature,
        maxTokens: settings.max_tokens,
      },
    });
  }

  /** Replays what the viewer missed, then it watches the chat live. */
  async resume(dto: ResumeDto, connectionId: string, userId: string): Promise<void> {
    const message = await this.messages.findOwned(dto.message_id, userId);
    if (!message || message.role !== 'assistant') throw new AppError('not_found', 'no such message', { message_id: dto.message_id });
    // Join and replay in one synchronous step, so no live frame can fall between them.
    this.registry.join(connectionId, chatRoom(message.chat_id));
    if (this.generations.replay(connectionId, message.id, dto.after_seq)) return;
    const fresh = (await this.messages.findById(message.id)) ?? message;
    this.registry.send(connectionId, this.storedEndFrame(fresh));
  }

  async subscribe(dto: SubscribeDto, connectionId: string, userId: string): Promise<Frame> {
    await this.requireChat(dto.chat_id, userId);
    this.registry.join(connectionId, chatRoom(dto.chat_id));
    return withId({ type: 'subscribed', chat_id: dto.chat_id }, dto.id);
  }

  // ---- reads and edits used by the HTTP side ----

  async listChats(userId: string): Promise<ChatView[]> {
    return (await this.chats.list(userId)).map(toChatView);
  }

  async getChat(id: string, userId: string): Promise<ChatView & { messages: MessageView[] }> {
    const chat = await this.requireChat(id, userId);
    const rows = await this.messages.listByChat(id);
    return { ...toChatView(chat), messages: rows.map((row) => this.toMessageView(row)) };
  }

  async renameChat(id: string, title: string, userId: string): Promise<ChatView> {
    await this.requireChat(id, userId);
    const chat = (await this.chats.update(id, { title: title.trim() || 'Untitled' }))!;
    this.fanout.publish(chatRoom(id), { type: 'chat_updated', chat_id: id, title: chat.title });
    return toChatView(chat);
  }

  async deleteChat(id: string, userId: string): Promise<void> {
    await this.requireChat(id, userId);
    for (const row of await this.messages.listByChat(id)) {
      if (row.status === 'streaming') this.generations.stop(row.id);
    }
    await this.chats.delete(id);
  }

  /** A message as stored, with the live text where it is still streaming in this process. */
  private toMessageView(row: MessageRow): MessageView {
    const view: MessageView = { id: row.id, role: row.role, content: row.content, status: row.status, created_at: row.created_at };
    if (row.role === 'assistant') {
      const live = row.status === 'streaming' ? this.generations.find(row.id) : undefined;
      view.content = live ? live.content : row.content;
      view.reasoning = live ? live.reasoning || null : row.reasoning;
      view.status = live ? live.status : row.status;
      view.seq = live ? live.seq : row.seq;
      view.model = row.model;
    }
    return view;
  }

  private storedEndFrame(row: MessageRow): Frame {
    const frame: Frame = withId(
      { type: 'agent_response_end', chat_id: row.chat_id, message_id: row.id, seq: row.seq, status: row.status, content: row.content },
      row.request_id ?? undefined,
    );
    if (row.reasoning) frame.reasoning = row.reasoning;
    if (row.usage) frame.usage = JSON.parse(row.usage);
    return frame;
  }

  /** The chat when it is this user's; another user's chat is as unknown as a missing one. */
  private async requireChat(id: string, userId: string): Promise<ChatRow> {
    const chat = await this.chats.findOwned(id, userId);
    if (!chat) throw new AppError('not_found', 'no such chat', { chat_id: id });
    return chat;
  }

  private async openChat(dto: UserMessageDto, connectionId: string, userId: string): Promise<ChatRow> {
    const chat = await this.chats.create({ id: randomUUID(), userId, title: titleFrom(dto.content) });
    this.registry.send(connectionId, withId({ type: 'chat_created', chat_id: chat.id, title: chat.title }, dto.id));
    return chat;
  }

  private publish(room: string, requestId: string | undefined, frame: Frame): void {
    this.fanout.publish(room, withId(frame, requestId));
  }
}

function withId(frame: Frame, id: string | undefined): Frame {
  if (id !== undefined) frame.id = id;
  return frame;
}

function toChatView(chat: ChatRow): ChatView {
  return { id: chat.id, title: chat.title, created_at: chat.created_at, updated_at: chat.updated_at };
}

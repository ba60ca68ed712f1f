import { Injectable } from '@nestjs/common';
import { randomBytes, randomUUID } from 'node:crypto';
import { deferred } from '../common/deferred';
import { RateLimits } from '../auth/rate-limits';
import { AppError } from '../common/app-error';
import { Environment } from '../config/environment';
import { storedEndFrame } from '../generation/generation';
import { GenerationService } from '../generation/generation.service';
import { LlmProvider } from '../llm/llm.provider';
import { type Chat, ChatsRepository, newChat as createChat } from '../storage/chats.repository';
import { FileRow, FilesRepository } from '../storage/files.repository';
import { type ContextMessage, type Message, MessagesRepository, newMessage } from '../storage/messages.repository';
import { SharesRepository } from '../storage/shares.repository';
import { TurnStore } from '../storage/turn-store';
import { ConnectionRegistry } from '../transport/connection-registry';
import { Fanout } from '../transport/fanout';
import { Frame } from '../transport/frames';
import { ChatLimits } from './chat-limits';
import { ImportedMessage } from './chat-transfer';
import { attachmentsWithinBudget, buildContext, ChatSettings, mergeSettings, titleFrom, withAttachedText } from './context';
import { RegenerateDto, ResumeDto, SubscribeDto } from './dto/control.dto';
import { UserMessageDto } from './dto/user-message.dto';
import { TitleService } from './title.service';

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
  /** Ids of the answers this regenerated one replaced, oldest first. */
  previous_versions?: string[];
  attachments?: { id: string; name: string; size: number }[];
  /** Older turns the answer's model request left out (only when some were). */
  omitted_turns?: number;
  /** The model's own finish_reason of an ended answer (`length`: cut short), when it gave one. */
  finish_reason?: string;
  /** An ended answer's usage figures, when the model reported them (as on `agent_response_end`). */
  usage?: Record<string, unknown>;
  /** An ended answer's time from its request to its end (not for imported answers). */
  duration_ms?: number;
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
    private readonly files: FilesRepository,
    private readonly chatLimits: ChatLimits,
    private readonly titles: TitleService,
    private readonly turns: TurnStore,
    private readonly shares: SharesRepository,
  ) {}

  /**
   * A user turn. Before the model request: at most one read of the chat and one of its history.
   * The chat's row (new chat), its settings, the user message and its answer's row are written
   * while the request is on its way; the answer's frames wait for them (see `GenerationSpec.stored`).
   */
  async userMessage(dto: UserMessageDto, connectionId: string, userId: string): Promise<void> {
    if (!this.generations.isAccepting) throw new AppError('shutting_down', 'the server is shutting down; try again shortly');
    // Every limit is checked before anything is written or sent to the model.
    const files = await this.chatLimits.attachments(dto.attachments, userId);
    await this.chatLimits.options(dto.options);
    const existing = dto.chat_id ? await this.requireChat(dto.chat_id, userId) : undefined;
    const settings = mergeSettings(existing?.settings ?? {}, dto.options);
    this.chatLimits.fitsContext(dto.content, files, settings.system_prompt);
    this.limits.checkRunning(this.generations.runningFor(userId));
    await this.limits.consumeMessage(userId);
    const requestId = dto.id;
    const chatId = existing?.id ?? randomUUID();
    const room = chatRoom(chatId);
    const newChat = existing ? undefined : createChat({ id: chatId, userId, title: titleFrom(dto.content), settings: dto.options ? settings : undefined });
    // A new chat's history is this message alone.
    const earlier = existing ? await this.messages.listContext(chatId) : [];
    const user = newMessage({
      id: randomUUID(),
      chat_id: chatId,
      role: 'user',
      content: dto.content,
      status: 'complete',
      attachments: files.map((f) => f.id),
    });
    await this.startAnswer({
      chatId,
      settings,
      history: earlier,
      newChat,
      userMessage: user,
      files,
      userId,
      requestId,
      beforeStore: async () => {
        if (existing && dto.options) await this.chats.update(chatId, { settings });
        await this.fanout.join(connectionId, room);
      },
      afterStore: () => {
        if (newChat) this.registry.send(connectionId, withId({ type: 'chat_created', chat_id: chatId, title: newChat.title }, requestId));
        const frame: Frame = { type: 'user_message', chat_id: chatId, message_id: user.id, content: user.content, created_at: user.created_at };
        if (files.length) frame.attachments = files.map((f) => ({ id: f.id, name: f.name, size: f.size }));
        this.publish(room, requestId, frame);
      },
    });
    // A new chat was created just now, and a settings update already moved its time.
    if (existing && !dto.options) await this.chats.touch(chatId);
  }

  /**
   * `regenerate`: answers the same user turn again. The new answer takes the old one's place (in the
   * chat and in later context); the old one stays readable as a previous version.
   */
  async regenerate(dto: RegenerateDto, connectionId: string, userId: string): Promise<void> {
    if (!this.generations.isAccepting) throw new AppError('shutting_down', 'the server is shutting down; try again shortly');
    const old = await this.messages.findOwned(dto.message_id, userId);
    if (!old || old.role !== 'assistant' || old.replaced_by) throw new AppError('not_found', 'no such answer', { message_id: dto.message_id });
    if (old.status === 'streaming') throw new AppError('invalid_message', 'message_id: that answer is still streaming', { message_id: old.id });
    this.limits.checkRunning(this.generations.runningFor(userId));
    await this.limits.consumeMessage(userId);
    const chat = await this.requireChat(old.chat_id, userId);
    await this.fanout.join(connectionId, chatRoom(chat.id));
    const all = await this.messages.listContext(chat.id);
    const history = all.slice(
      0,
      all.findIndex((m) => m.id === old.id),
    );
    const previous = [...old.previous_versions, old.id];
    await this.startAnswer({
      chatId: chat.id,
      settings: chat.settings,
      history,
      userId,
      requestId: dto.id,
      previousVersions: previous,
    });
  }

  /**
   * Starts the answer to the newest turn of `history` (with `userMessage` as that newest turn): the
   * model request goes out first; then `beforeStore` runs, the new chat (if any), the user message
   * and the answer's row are written in one transaction, `afterStore` runs, and only then do the
   * answer's frames go out.
   */
  private async startAnswer(turn: {
    chatId: string;
    settings: ChatSettings;
    history: ContextMessage[];
    newChat?: Chat;
    userMessage?: Message;
    /** Files already read (the new message's attachments): not read again for the context. */
    files?: FileRow[];
    /** What must precede the rows and the frames (a settings update, joining the chat's room). */
    beforeStore?: () => Promise<void>;
    /** Frames that announce the stored rows, before the answer's (`chat_created`, `user_message`). */
    afterStore?: () => void;
    userId: string;
    requestId?: string;
    previousVersions?: string[];
  }): Promise<void> {
    const { chatId, settings, userId, requestId, userMessage } = turn;
    if (!this.llm.isConfigured()) {
      // The user's message is kept (and shown) even though nothing can answer it.
      await this.turns.write({ newChat: turn.newChat, messages: userMessage ? [userMessage] : [], before: turn.beforeStore });
      turn.afterStore?.();
      throw new AppError('model_not_configured', 'no model API key is configured (set DEEPSEEK_API_KEY)', { chat_id: chatId });
    }
    const history = await this.withAttachments(userMessage ? [...turn.history, userMessage] : turn.history, userId, turn.files);
    const context = buildContext(history, settings.system_prompt, this.env.CONTEXT_TOKENS);
    const model = settings.model ?? this.llm.defaultModel;
    const assistant = newMessage({
      id: randomUUID(),
      chat_id: chatId,
      role: 'assistant',
      content: '',
      status: 'streaming',
      model,
      request_id: requestId ?? null,
      previous_versions: turn.previousVersions,
      instance_id: this.generations.instanceId,
      omitted_turns: context.omittedTurns,
    });
    const written = deferred();
    const generation = this.generations.start({
      chatId,
      messageId: assistant.id,
      requestId,
      model,
      room: chatRoom(chatId),
      ownerId: userId,
      startFields: {
        ...(context.omittedTurns ? { omitted_turns: context.omittedTurns } : {}),
        ...(turn.previousVersions?.length ? { previous_versions: turn.previousVersions } : {}),
      },
      request: {
        messages: context.messages,
        model,
        thinking: settings.thinking,
        temperature: settings.temperature,
        maxTokens: this.chatLimits.maxTokens(settings.max_tokens),
      },
      stored: written.promise,
    });
    const newChat = turn.newChat;
    if (newChat && userMessage && this.titles.enabled) {
      // After the first answer (its end is sent and stored first): the title, in the background.
      void generation.done.then(() => {
        if (generation.status !== 'complete') return;
        return this.titles.afterFirstAnswer({
          chatId,
          userId,
          fallback: newChat.title,
          question: userMessage.content,
          answer: generation.content,
          room: chatRoom(chatId),
        });
      });
    }
    try {
      // Behind the request just started; what the model sent meanwhile leaves with the frames below.
      await this.turns.writeBehindRequest({
        newChat: turn.newChat,
        messages: userMessage ? [userMessage, assistant] : [assistant],
        replaces: turn.previousVersions?.length ? { ids: turn.previousVersions, by: assistant.id } : undefined,
        before: turn.beforeStore,
      });
      turn.afterStore?.();
      written.resolve();
    } catch (error) {
      // The generation drops itself without a frame; the sender gets this error.
      written.reject(error);
      throw error;
    }
  }

  /**
   * Messages whose attachments' text is appended, as the model sees them (now and in later turns).
   * Only the files of turns that can still fit CONTEXT_TOKENS are read (their sizes tell).
   */
  private async withAttachments(rows: ContextMessage[], userId: string, known: FileRow[] = []): Promise<ContextMessage[]> {
    const ids = [...new Set(rows.flatMap((row) => row.attachments))];
    if (!ids.length) return rows;
    const files = new Map(known.map((f) => [f.id, f]));
    const sizes = new Map(known.map((f) => [f.id, f.size]));
    const unsized = ids.filter((id) => !sizes.has(id));
    if (unsized.length) for (const { id, size } of await this.files.sizesOf(unsized, userId)) sizes.set(id, size);
    const unread = attachmentsWithinBudget(rows, sizes, this.env.CONTEXT_TOKENS).filter((id) => !files.has(id));
    if (unread.length) for (const file of await this.files.findFiles([...new Set(unread)], userId)) files.set(file.id, file);
    return rows.map((row) => {
      if (!row.attachments.length) return row;
      const parts = row.attachments.map((id) => files.get(id)).filter((f) => f !== undefined);
      return { ...row, content: withAttachedText(row.content, parts) };
    });
  }

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
    await this.requireChat(dto.chat_id, userId);
    await this.fanout.join(connectionId, chatRoom(dto.chat_id));
    return withId({ type: 'subscribed', chat_id: dto.chat_id }, dto.id);
  }

  // ---- reads and edits used by the HTTP side ----

  async listChats(userId: string): Promise<ChatView[]> {
    return (await this.chats.list(userId)).map(toChatView);
  }

  async getChat(id: string, userId: string): Promise<ChatView & { settings: ChatSettings; messages: MessageView[] }> {
    const chat = await this.requireChat(id, userId);
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

  /** One message of the user's, current or a previous version. */
  async getMessage(id: string, userId: string): Promise<MessageView & { chat_id: string; replaced_by: string | null }> {
    const row = await this.messages.findOwned(id, userId);
    if (!row) throw new AppError('not_found', 'no such message', { message_id: id });
    return { ...this.toMessageView(row), chat_id: row.chat_id, replaced_by: row.replaced_by };
  }

  /** A new chat holding an export's messages (at most IMPORTS_PER_HOUR); all of it or nothing shows. */
  async importChat(data: { title: string; messages: ImportedMessage[] }, userId: string): Promise<{ id: string }> {
    await this.chatLimits.consumeImport(userId);
    const chat = createChat({ id: randomUUID(), userId, title: data.title });
    // Made a batch at a time, as they are written.
    const rows = (function* () {
      for (const m of data.messages) {
        const status = m.role === 'user' ? 'complete' : m.status;
        const message = newMessage({ id: randomUUID(), chat_id: chat.id, role: m.role, content: m.content, status, omitted_turns: m.omitted_turns });
        yield { ...message, reasoning: m.reasoning };
      }
    })();
    await this.chats.insertImported(chat, rows);
    return { id: chat.id };
  }

  /** A read-only link to one chat; every call makes a new one. */
  async share(chatId: string, userId: string): Promise<{ token: string; url: string }> {
    await this.requireChat(chatId, userId);
    const token = randomBytes(24).toString('base64url');
    await this.shares.insert({ token, chat_id: chatId });
    return { token, url: `/share/${token}` };
  }

  async unshare(chatId: string, userId: string): Promise<void> {
    await this.requireChat(chatId, userId);
    await this.shares.deleteByChat(chatId);
  }

  /** The chat behind a share link, for anyone holding it; nothing else of the owner's. */
  async sharedChat(token: string): Promise<ChatView & { messages: MessageView[] }> {
    const share = /^[A-Za-z0-9_-]{16,64}$/.test(token) ? await this.shares.findByToken(token) : undefined;
    const chat = share ? await this.chats.findById(share.chat_id) : undefined;
    if (!chat) throw new AppError('not_found', 'no such shared chat');
    const rows = await this.messages.listByChat(chat.id);
    return { ...toChatView(chat), messages: rows.map((row) => this.toMessageView(row)) };
  }

  async search(query: string, userId: string) {
    const hits = await this.messages.search(userId, query);
    return hits.map(({ chat_id, message_id, title, snippet }) => ({ chat_id, message_id, title, snippet }));
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
  private toMessageView(row: Message): MessageView {
    const view: MessageView = { id: row.id, role: row.role, content: row.content, status: row.status, created_at: row.created_at };
    if (row.previous_versions.length) view.previous_versions = row.previous_versions;
    if (row.role === 'assistant') {
      const live = row.status === 'streaming' ? this.generations.find(row.id) : undefined;
      view.content = live ? live.content : row.content;
      view.reasoning = live ? live.reasoning || null : row.reasoning;
      view.status = live ? live.status : row.status;
      view.seq = live ? live.seq : row.seq;
      view.model = row.model;
      if (row.omitted_turns && row.omitted_turns > 0) view.omitted_turns = row.omitted_turns;
      if (row.finish_reason && !live) view.finish_reason = row.finish_reason;
      if (!live && row.status !== 'streaming') Object.assign(view, endedFigures(row));
    }
    return view;
  }

  /** The chat when it is this user's; another user's chat is as unknown as a missing one. */
  private async requireChat(id: string, userId: string): Promise<Chat> {
    const chat = await this.chats.findOwned(id, userId);
    if (!chat) throw new AppError('not_found', 'no such chat', { chat_id: id });
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

function toChatView(chat: Chat): ChatView {
  return { id: chat.id, title: chat.title, created_at: chat.created_at, updated_at: chat.updated_at };
}

/** An ended answer's usage and time taken: its row is made as its request goes out and last written at its end. */
function endedFigures(row: Message): Pick<MessageView, 'usage' | 'duration_ms'> {
  const figures: Pick<MessageView, 'usage' | 'duration_ms'> = {};
  if (row.usage) figures.usage = row.usage;
  const ms = Date.parse(row.updated_at) - Date.parse(row.created_at);
  // Imported answers have no model and no time of their own.
  if (row.model && Number.isFinite(ms) && ms > 0) figures.duration_ms = ms;
  return figures;
}

import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { AppError } from '../common/app-error';
import { deferred } from '../common/deferred';
import { GenerationService } from '../generation/generation.service';
import { type Chat, type ChatSettings, ChatsRepository, newChat as createChat, type OwnedWithContext } from '../storage/chats.repository';
import type { FileRow } from '../storage/files.repository';
import { type ContextMessage, type Message, MessagesRepository, newMessage } from '../storage/messages.repository';
import { TurnStore } from '../storage/turn-store';
import { ConnectionRegistry } from '../transport/connection-registry';
import { Fanout } from '../transport/fanout';
import type { Frame } from '../transport/frames';
import { ChatLimits } from './chat-limits';
import { chatRoom, withId } from './chat-views';
import { mergeSettings, titleFrom } from './context';
import type { RegenerateDto } from './dto/control.dto';
import type { UserMessageDto } from './dto/user-message.dto';
import { TitleService } from './title.service';
import { TurnRequests } from './turn-request';

/** What `startAnswer` needs of a turn. */
interface Turn {
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
  /** A regenerated answer's: the answers it replaces, oldest first. */
  previousVersions?: string[];
  /** An edit's: the edited message and every message after it, hidden as a branch behind the new user message. */
  branch?: string[];
}

/** Where an edit (`edit_of`) puts the new user message: the edited one's place on the chat's current line. */
interface EditPlace {
  /** The current line before the edited message: the new message's history. */
  before: ContextMessage[];
  /** The edited message and everything after it: they become the previous version of that place. */
  branch: string[];
  /** The edited message's own versions, then the edited message: the new message's `previous_versions`. */
  previousVersions: string[];
}

/** Chat turns: a user message or a regenerate becomes an answer (a generation). Transports only call in. */
@Injectable()
export class TurnService {
  constructor(
    private readonly chats: ChatsRepository,
    private readonly messages: MessagesRepository,
    private readonly store: TurnStore,
    private readonly requests: TurnRequests,
    private readonly generations: GenerationService,
    private readonly fanout: Fanout,
    private readonly registry: ConnectionRegistry,
    private readonly limits: ChatLimits,
    private readonly titles: TitleService,
  ) {}

  /**
   * A user turn. Before the model request: at most one read, of the chat with its history (an edit
   * reads the edited message too).
   * The chat's row (new chat), its settings, the user message and its answer's row are written
   * while the request is on its way; the answer's frames wait for them (see `GenerationSpec.stored`).
   */
  async userMessage(dto: UserMessageDto, connectionId: string, userId: string): Promise<void> {
    this.assertAccepting();
    if (dto.edit_of !== undefined && dto.chat_id === undefined)
      throw new AppError('invalid_message', 'edit_of: chat_id is required with it', { field: 'edit_of' });
    // Every limit is checked before anything is written or sent to the model.
    const files = await this.limits.attachments(dto.attachments, userId);
    await this.limits.options(dto.options);
    // The chat and its current line in one read; a new chat's history is this message alone.
    const owned = dto.chat_id ? await this.ownedChatWithContext(dto.chat_id, userId) : undefined;
    const existing = owned?.chat;
    const settings = mergeSettings(existing?.settings ?? {}, dto.options);
    this.limits.fitsContext(dto.content, files, settings.system_prompt);
    const requestId = dto.id;
    const chatId = existing?.id ?? randomUUID();
    const earlier = owned?.context ?? [];
    const edit = dto.edit_of !== undefined ? await this.editPlace(dto.edit_of, chatId, earlier, userId) : undefined;
    await this.limits.admitAnswer(userId, this.generations.runningFor(userId));
    const room = chatRoom(chatId);
    const newChat = existing ? undefined : createChat({ id: chatId, userId, title: titleFrom(dto.content), settings: dto.options ? settings : undefined });
    const user = newMessage({
      id: randomUUID(),
      chat_id: chatId,
      role: 'user',
      content: dto.content,
      status: 'complete',
      attachments: files.map((f) => f.id),
      previous_versions: edit?.previousVersions,
    });
    await this.startAnswer({
      chatId,
      settings,
      history: edit ? edit.before : earlier,
      newChat,
      userMessage: user,
      files,
      userId,
      requestId,
      branch: edit?.branch,
      beforeStore: async () => {
        if (existing && dto.options) await this.chats.update(chatId, { settings });
        await this.fanout.join(connectionId, room);
      },
      afterStore: () => {
        if (newChat) this.registry.send(connectionId, withId({ type: 'chat_created', chat_id: chatId, title: newChat.title }, requestId));
        const frame: Frame = { type: 'user_message', chat_id: chatId, message_id: user.id, content: user.content, created_at: user.created_at };
        if (edit) frame.previous_versions = edit.previousVersions;
        if (files.length) frame.attachments = files.map((f) => ({ id: f.id, name: f.name, size: f.size }));
        this.fanout.publish(room, withId(frame, requestId));
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
    this.assertAccepting();
    const old = await this.messages.findOwned(dto.message_id, userId);
    if (!old || old.role !== 'assistant' || old.replaced_by) throw new AppError('not_found', 'no such answer', { message_id: dto.message_id });
    if (old.status === 'streaming') throw new AppError('invalid_message', 'message_id: that answer is still streaming', { message_id: old.id });
    await this.limits.admitAnswer(userId, this.generations.runningFor(userId));
    const { chat, context: all } = await this.ownedChatWithContext(old.chat_id, userId);
    await this.fanout.join(connectionId, chatRoom(chat.id));
    const history = all.slice(
      0,
      all.findIndex((m) => m.id === old.id),
    );
    await this.startAnswer({
      chatId: chat.id,
      settings: chat.settings,
      history,
      userId,
      requestId: dto.id,
      previousVersions: [...old.previous_versions, old.id],
    });
  }

  /**
   * The place an edit takes: `id` must be a user message on the current line of the sender's chat
   * `chatId` (`earlier`, that line), with no answer after it still streaming. A refusal names the
   * field, not the message: an error with a `message_id` is about that message's answer, and the
   * send is what was refused.
   */
  private async editPlace(id: string, chatId: string, earlier: ContextMessage[], userId: string): Promise<EditPlace> {
    const edited = await this.messages.findOwned(id, userId);
    if (!edited || edited.chat_id !== chatId) throw new AppError('not_found', 'edit_of: no such message in that chat', { field: 'edit_of' });
    if (edited.role !== 'user') throw new AppError('invalid_message', 'edit_of: only a user message can be edited', { field: 'edit_of' });
    const index = earlier.findIndex((m) => m.id === id);
    if (edited.replaced_by || index < 0) {
      throw new AppError('invalid_message', 'edit_of: that message is an earlier version; edit the one the chat shows now', {
        field: 'edit_of',
        message_id: id,
      });
    }
    const after = earlier.slice(index + 1);
    if (after.some((m) => m.status === 'streaming')) {
      throw new AppError('invalid_message', 'edit_of: an answer after that message is still streaming; stop it first', { field: 'edit_of' });
    }
    return { before: earlier.slice(0, index), branch: [id, ...after.map((m) => m.id)], previousVersions: [...edited.previous_versions, id] };
  }

  /**
   * Starts the answer to the newest turn of `history` (with `userMessage` as that newest turn): the
   * model request goes out first; then `beforeStore` runs, the new chat (if any), the user message
   * and the answer's row are written in one transaction, `afterStore` runs, and only then do the
   * answer's frames go out.
   */
  private async startAnswer(turn: Turn): Promise<void> {
    const { chatId, userId, requestId, userMessage } = turn;
    // An edit hides the edited message and what followed it behind the new user message.
    const branch = turn.branch?.length && userMessage ? { ids: turn.branch, by: userMessage.id } : undefined;
    if (!this.requests.configured) {
      // The user's message is kept (and shown) even though nothing can answer it.
      await this.store.write({ newChat: turn.newChat, messages: userMessage ? [userMessage] : [], replaces: branch, before: turn.beforeStore });
      turn.afterStore?.();
      throw new AppError('model_not_configured', 'no model API key is configured (set DEEPSEEK_API_KEY)', { chat_id: chatId });
    }
    const { model, request, omittedTurns } = await this.requests.build(
      userMessage ? [...turn.history, userMessage] : turn.history,
      turn.settings,
      userId,
      turn.files,
    );
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
      omitted_turns: omittedTurns,
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
        ...(omittedTurns ? { omitted_turns: omittedTurns } : {}),
        ...(turn.previousVersions?.length ? { previous_versions: turn.previousVersions } : {}),
      },
      request,
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
      await this.store.writeBehindRequest({
        newChat: turn.newChat,
        messages: userMessage ? [userMessage, assistant] : [assistant],
        replaces: turn.previousVersions?.length ? { ids: turn.previousVersions, by: assistant.id } : branch,
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

  private assertAccepting(): void {
    if (!this.generations.isAccepting) throw new AppError('shutting_down', 'the server is shutting down; try again shortly');
  }

  /**
   * The chat with its current line (`listContext`), in one read, when it is this user's; another
   * user's chat is as unknown as a missing one (and nothing of it is read).
   */
  private async ownedChatWithContext(id: string, userId: string): Promise<OwnedWithContext> {
    const owned = await this.chats.findOwnedWithContext(id, userId);
    if (!owned) throw new AppError('not_found', 'no such chat', { chat_id: id });
    return owned;
  }
}

import type { InjectionToken } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import type { WebSocket } from 'ws';
import { AppError } from '../common/app-error';
import { RateLimits } from '../auth/rate-limits';
import { Environment, validateEnvironment } from '../config/environment';
import { type Generation } from '../generation/generation';
import { GenerationService } from '../generation/generation.service';
import { LlmProvider } from '../llm/llm.provider';
import { type Chat, ChatsRepository } from '../storage/chats.repository';
import { FilesRepository } from '../storage/files.repository';
import { type Message, MessagesRepository } from '../storage/messages.repository';
import { TurnStore } from '../storage/turn-store';
import { ConnectionRegistry } from '../transport/connection-registry';
import { Fanout } from '../transport/fanout';
import { type Frame } from '../transport/frames';
import { ChatLimits } from './chat-limits';
import { ChatService, chatRoom } from './chat.service';
import { TurnRequests } from './turn-request';
import { TurnService } from './turn.service';
import { TitleService } from './title.service';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const T = '2030-01-01T00:00:00.000Z';
const CHAT_ID = '11111111-1111-4111-8111-111111111111';
const USAGE = { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 };
const USER = 'user-1';

/** A mock whose listed methods fail the test when called without being set up. */
function strictMock<T extends object>(name: string, methods: (keyof T & string)[], extra: object = {}): jest.Mocked<T> {
  const mock: Record<string, unknown> = { ...extra };
  for (const key of methods) {
    mock[key] = jest.fn((...args: unknown[]) => {
      throw new Error(`unexpected call ${name}.${key}(${JSON.stringify(args)})`);
    });
  }
  return mock as jest.Mocked<T>;
}

/** Hooks Nest looks for on every provider, and `then` (promise check): absent on an automatic mock. */
const NOT_MOCKED = new Set(['then', 'onModuleInit', 'onApplicationBootstrap', 'onModuleDestroy', 'beforeApplicationShutdown', 'onApplicationShutdown']);

/** A mock of a collaborator the test does not set up (`useMocker`): any method call on it fails the test. */
function automaticMock(token: InjectionToken | undefined): unknown {
  const name = typeof token === 'function' ? token.name : String(token);
  const methods = new Map<string, jest.Mock>();
  return new Proxy(
    {},
    {
      get(_target, key) {
        if (typeof key === 'symbol' || NOT_MOCKED.has(key)) return undefined;
        if (!methods.has(key)) {
          methods.set(
            key,
            jest.fn((...args: unknown[]) => {
              throw new Error(`unexpected call ${name}.${key}(${JSON.stringify(args)})`);
            }),
          );
        }
        return methods.get(key);
      },
    },
  );
}

function chatRow(settings: object = {}, id = CHAT_ID): Chat {
  return { id, user_id: USER, title: 'A chat', settings, created_at: T, updated_at: T };
}

function messageRow(fields: Partial<Message> & Pick<Message, 'id' | 'role' | 'content'>): Message {
  return {
    chat_id: CHAT_ID,
    reasoning: null,
    status: 'complete',
    model: null,
    usage: null,
    error_code: null,
    finish_reason: null,
    request_id: null,
    seq: 0,
    created_at: T,
    updated_at: T,
    replaced_by: null,
    previous_versions: [],
    attachments: [],
    instance_id: null,
    omitted_turns: null,
    ...fields,
  };
}

describe('TurnService and ChatService', () => {
  let context: TestingModule;
  let service: ChatService;
  let turns: TurnService;
  let chats: jest.Mocked<ChatsRepository>;
  let messages: jest.Mocked<MessagesRepository>;
  let generations: jest.Mocked<GenerationService> & { isAccepting: boolean };
  let llm: jest.Mocked<LlmProvider>;
  let limits: jest.Mocked<RateLimits>;
  let files: jest.Mocked<FilesRepository>;
  let fanout: jest.Mocked<Fanout>;
  let registry: ConnectionRegistry;
  let socket: { readyState: number; send: jest.Mock };
  let connectionId: string;
  /** Rows the mocked repository "stored", in order. */
  let stored: Message[];

  const sentToConnection = (): Frame[] => socket.send.mock.calls.map(([data]) => JSON.parse(data as string) as Frame);

  beforeEach(async () => {
    chats = strictMock<ChatsRepository>('ChatsRepository', [
      'create',
      'insert',
      'findById',
      'findOwned',
      'findOwnedWithContext',
      'list',
      'update',
      'touch',
      'delete',
    ]);
    messages = strictMock<MessagesRepository>('MessagesRepository', [
      'insertMany',
      'findById',
      'findOwned',
      'listByChat',
      'listContext',
      'snapshotMany',
      'finish',
      'interruptAllStreaming',
    ]);
    generations = strictMock<GenerationService>('GenerationService', ['start', 'stop', 'replay', 'find', 'runningFor'], {
      isAccepting: true,
    }) as typeof generations;
    llm = strictMock<LlmProvider>('LlmProvider', ['isConfigured', 'stream', 'listModels'], { defaultModel: 'fake-model' });
    // joins go to the real registry, as the in-memory fan-out does
    fanout = { publish: jest.fn(), join: jest.fn(async (id: string, room: string) => registry.join(id, room)) } as unknown as jest.Mocked<Fanout>;
    limits = strictMock<RateLimits>('RateLimits', ['checkRunning', 'consumeMessage']);
    limits.checkRunning.mockReturnValue(undefined);
    limits.consumeMessage.mockResolvedValue(undefined);
    generations.runningFor.mockReturnValue(0);
    files = strictMock<FilesRepository>('FilesRepository', ['findFiles', 'sizesOf']);
    files.findFiles.mockResolvedValue([]);

    stored = [];
    messages.insertMany.mockImplementation(async (rows: Message[]) => {
      stored.push(...rows);
    });
    chats.insert.mockImplementation(async (_chat, rows: Message[] = []) => {
      stored.push(...rows);
    });
    messages.listByChat.mockImplementation(async () => [...stored]);
    messages.listContext.mockImplementation(async () => [...stored]);
    // The turn's one read of the chat with its context answers what these two mocks answer.
    chats.findOwnedWithContext.mockImplementation(async (id, userId) => {
      const chat = await chats.findOwned(id, userId);
      return chat && { chat, context: await messages.listContext(id) };
    });
    chats.touch.mockResolvedValue(undefined);
    llm.isConfigured.mockReturnValue(true);
    generations.start.mockReturnValue({} as Generation);

    context = await Test.createTestingModule({
      providers: [
        TurnService,
        ChatService,
        TurnRequests,
        ConnectionRegistry,
        { provide: ChatsRepository, useValue: chats },
        { provide: MessagesRepository, useValue: messages },
        { provide: GenerationService, useValue: generations },
        { provide: LlmProvider, useValue: llm },
        { provide: Fanout, useValue: fanout },
        { provide: RateLimits, useValue: limits },
        { provide: FilesRepository, useValue: files },
        { provide: Environment, useValue: validateEnvironment({ CONTEXT_TOKENS: '4096' }) },
        ChatLimits,
        TurnStore,
        // Generated titles have their own e2e spec (test/retry-and-titles): off here.
        { provide: TitleService, useValue: { enabled: false } },
      ],
    })
      .useMocker(automaticMock)
      .compile();
    await context.init();
    service = context.get(ChatService);
    turns = context.get(TurnService);
    registry = context.get(ConnectionRegistry);
    socket = { readyState: 1, send: jest.fn() };
    connectionId = registry.add(socket as unknown as WebSocket, { id: USER }).id;
  });

  afterEach(() => context.close());

  describe('userMessage', () => {
    it('in a new chat: the model request goes out first; chat row, both messages (one statement), chat_created and user_message follow, then the answer may show', async () => {
      await turns.userMessage({ id: 'req-1', content: '  Hello  there \n more  ' }, connectionId, USER);

      // the chat and both messages in one transaction, the user's message first
      const [userRow, assistantRow] = stored;
      const chat = chats.insert.mock.calls[0][0];
      const chatId = chat.id;
      expect(chatId).toMatch(UUID);
      expect(chats.insert.mock.calls).toEqual([[chat, [userRow, assistantRow]]]);
      expect(chat).toEqual({ id: chatId, user_id: USER, title: 'Hello there', settings: {}, created_at: chat.created_at, updated_at: chat.created_at });
      expect(chat.created_at < userRow.created_at).toBe(true);
      expect(chats.create).not.toHaveBeenCalled();
      expect(messages.insertMany).not.toHaveBeenCalled();
      expect(limits.consumeMessage.mock.calls).toEqual([[USER]]);
      expect(sentToConnection()).toEqual([{ type: 'chat_created', chat_id: chatId, title: 'Hello there', id: 'req-1' }]);
      expect(registry.isInRoom(connectionId, chatRoom(chatId))).toBe(true);

      // a new chat's history is not read back
      expect(userRow).toEqual(
        expect.objectContaining({ chat_id: chatId, role: 'user', content: '  Hello  there \n more  ', status: 'complete', attachments: [] }),
      );
      expect(assistantRow).toEqual(
        expect.objectContaining({
          chat_id: chatId,
          role: 'assistant',
          content: '',
          status: 'streaming',
          model: 'fake-model',
          request_id: 'req-1',
          seq: 0,
          omitted_turns: 0,
        }),
      );
      expect(userRow.created_at < assistantRow.created_at).toBe(true);
      expect(messages.listContext).not.toHaveBeenCalled();
      expect(userRow.id).toMatch(UUID);
      expect(assistantRow.id).toMatch(UUID);
      expect(fanout.publish.mock.calls).toEqual([
        [
          `chat:${chatId}`,
          { type: 'user_message', chat_id: chatId, message_id: userRow.id, content: '  Hello  there \n more  ', created_at: userRow.created_at, id: 'req-1' },
        ],
      ]);
      expect(chats.touch).not.toHaveBeenCalled(); // created just now
      expect(generations.start.mock.calls).toEqual([
        [
          {
            chatId,
            messageId: assistantRow.id,
            requestId: 'req-1',
            model: 'fake-model',
            room: `chat:${chatId}`,
            ownerId: USER,
            startFields: {},
            stored: expect.any(Promise),
            request: {
              messages: [{ role: 'user', content: '  Hello  there \n more  ' }],
              model: 'fake-model',
              thinking: undefined,
              temperature: undefined,
              maxTokens: undefined,
            },
          },
        ],
      ]);

      const started = generations.start.mock.invocationCallOrder[0];
      const [storeAll] = chats.insert.mock.invocationCallOrder;
      const published = fanout.publish.mock.invocationCallOrder[0];
      expect(started).toBeLessThan(storeAll);
      expect(storeAll).toBeLessThan(published);
      await expect(generations.start.mock.calls[0][0].stored).resolves.toBeUndefined();
    });

    it('in an existing chat: merges options into its settings, stores them, and the turn uses them', async () => {
      chats.findOwned.mockResolvedValue(chatRow({ model: 'm1', thinking: true, temperature: 0.5 }));
      chats.update.mockResolvedValue(undefined);
      stored.push(
        messageRow({ id: 'u0', role: 'user', content: 'first question' }),
        messageRow({ id: 'a0', role: 'assistant', content: 'first answer', reasoning: 'not sent' }),
      );

      await turns.userMessage(
        { content: 'Next', chat_id: CHAT_ID, options: { temperature: null, max_tokens: 100, system_prompt: 'Be brief' } },
        connectionId,
        USER,
      );
      expect(chats.findOwned).toHaveBeenCalledWith(CHAT_ID, USER);

      expect(socket.send).not.toHaveBeenCalled(); // no chat_created
      expect(chats.update.mock.calls).toEqual([[CHAT_ID, { settings: { model: 'm1', thinking: true, max_tokens: 100, system_prompt: 'Be brief' } }]]);
      // written while the request is out, before the answer's frames may go
      expect(chats.update.mock.invocationCallOrder[0]).toBeLessThan(messages.insertMany.mock.invocationCallOrder[0]);
      const spec = generations.start.mock.calls[0][0];
      expect(spec.requestId).toBeUndefined();
      expect(spec.model).toBe('m1');
      expect(spec.request).toEqual({
        messages: [
          { role: 'system', content: 'Be brief' },
          { role: 'user', content: 'first question' },
          { role: 'assistant', content: 'first answer' },
          { role: 'user', content: 'Next' },
        ],
        model: 'm1',
        thinking: true,
        temperature: undefined,
        maxTokens: 100,
      });
      expect(fanout.publish.mock.calls[0][1]).not.toHaveProperty('id');
      expect(stored[3]).toEqual(expect.objectContaining({ role: 'assistant', model: 'm1', request_id: null }));
      expect(chats.touch).not.toHaveBeenCalled(); // the settings update moved the chat's time
    });

    it("stores with the answer's row how many older turns its model request left out, as the start frame says", async () => {
      chats.findOwned.mockResolvedValue(chatRow());
      stored.push(
        messageRow({ id: 'u0', role: 'user', content: 'long '.repeat(4000) }), // ~5000 tokens: over CONTEXT_TOKENS
        messageRow({ id: 'a0', role: 'assistant', content: 'first answer' }),
        messageRow({ id: 'u1', role: 'user', content: 'second question' }),
        messageRow({ id: 'a1', role: 'assistant', content: 'second answer' }),
      );
      await turns.userMessage({ content: 'Next', chat_id: CHAT_ID }, connectionId, USER);
      const spec = generations.start.mock.calls[0][0];
      expect(spec.startFields).toEqual({ omitted_turns: 1 });
      expect(spec.request.messages.map((m) => m.content)).toEqual(['second question', 'second answer', 'Next']);
      expect(stored.slice(4)).toEqual([
        expect.objectContaining({ role: 'user', content: 'Next', omitted_turns: null }),
        expect.objectContaining({ id: spec.messageId, role: 'assistant', status: 'streaming', omitted_turns: 1 }),
      ]);
    });

    it("without options leaves the stored settings alone, and moves the chat's time once the model request is out", async () => {
      chats.findOwned.mockResolvedValue(chatRow({ temperature: 1.5 }));
      await turns.userMessage({ content: 'Hi', chat_id: CHAT_ID }, connectionId, USER);
      expect(chats.update).not.toHaveBeenCalled();
      expect(generations.start.mock.calls[0][0].request.temperature).toBe(1.5);
      expect(chats.touch.mock.calls).toEqual([[CHAT_ID]]);
      expect(generations.start.mock.invocationCallOrder[0]).toBeLessThan(chats.touch.mock.invocationCallOrder[0]);
    });

    it('reads the files of earlier turns only where those turns may still fit CONTEXT_TOKENS', async () => {
      chats.findOwned.mockResolvedValue(chatRow());
      stored.push(
        messageRow({ id: 'u0', role: 'user', content: 'old file', attachments: ['old'] }),
        messageRow({ id: 'a0', role: 'assistant', content: 'first answer' }),
        messageRow({ id: 'u1', role: 'user', content: 'recent file', attachments: ['recent'] }),
        messageRow({ id: 'a1', role: 'assistant', content: 'second answer' }),
      );
      const file = (id: string, size: number) => ({ id, user_id: USER, name: `${id}.txt`, size, content: 'x'.repeat(size), created_at: 'T' });
      files.sizesOf.mockResolvedValue([
        { id: 'old', size: 1_000_000 },
        { id: 'recent', size: 60_000 }, // over CONTEXT_TOKENS (4096) on its own
      ]);
      files.findFiles.mockResolvedValue([file('recent', 60_000) as never]);
      await turns.userMessage({ content: 'Next', chat_id: CHAT_ID }, connectionId, USER);
      expect(files.sizesOf.mock.calls).toEqual([[['old', 'recent'], USER]]);
      expect(files.findFiles.mock.calls).toEqual([[['recent'], USER]]);
      const spec = generations.start.mock.calls[0][0];
      expect(spec.startFields).toEqual({ omitted_turns: 2 });
      expect(spec.request.messages.map((m) => m.content)).toEqual(['Next']);
    });

    it("a new message's attachments are read once (their owner checked), and their text goes to the model", async () => {
      const file = { id: 'f1', user_id: USER, name: 'notes.txt', size: 9, content: 'line one\n', created_at: '2026-01-01T00:00:00.000Z' };
      files.findFiles.mockResolvedValue([file as never]);
      await turns.userMessage({ content: 'Sum up', attachments: ['f1'] }, connectionId, USER);
      expect(files.findFiles.mock.calls).toEqual([[['f1'], USER]]);
      const sent = generations.start.mock.calls[0][0].request.messages;
      expect(sent[sent.length - 1].content).toContain('--- Attached file: notes.txt ---\nline one\n');
    });

    it('a failed write after the request went out: the sender gets the error, `stored` rejects (the generation drops itself), nothing is published', async () => {
      chats.findOwned.mockResolvedValue(chatRow());
      messages.insertMany.mockRejectedValue(new Error('disk full'));
      await expect(turns.userMessage({ id: 'r', content: 'Hi', chat_id: CHAT_ID }, connectionId, USER)).rejects.toThrow('disk full');
      expect(generations.start).toHaveBeenCalledTimes(1);
      await expect(generations.start.mock.calls[0][0].stored).rejects.toThrow('disk full');
      expect(fanout.publish).not.toHaveBeenCalled();
      expect(chats.touch).not.toHaveBeenCalled();
    });

    it("an unknown (or another user's) chat_id is not_found; nothing is stored, published, started or counted", async () => {
      chats.findOwned.mockResolvedValue(undefined);
      const attempt = turns.userMessage({ id: 'r', content: 'Hi', chat_id: CHAT_ID }, connectionId, USER);
      await expect(attempt).rejects.toBeInstanceOf(AppError);
      await expect(attempt).rejects.toMatchObject({ code: 'not_found', details: { chat_id: CHAT_ID } });
      expect(messages.insertMany).not.toHaveBeenCalled();
      expect(fanout.publish).not.toHaveBeenCalled();
      expect(generations.start).not.toHaveBeenCalled();
      expect(limits.consumeMessage).not.toHaveBeenCalled();
      expect(registry.isInRoom(connectionId, chatRoom(CHAT_ID))).toBe(false);
      expect(socket.send).not.toHaveBeenCalled();
    });

    it('over the rate limit: refused before a chat or message is made', async () => {
      limits.consumeMessage.mockRejectedValue(new AppError('rate_limited', 'too many messages', { retry_after_ms: 1234 }));
      await expect(turns.userMessage({ content: 'Hi' }, connectionId, USER)).rejects.toMatchObject({
        code: 'rate_limited',
        details: { retry_after_ms: 1234 },
      });
      expect(chats.insert).not.toHaveBeenCalled();
      expect(messages.insertMany).not.toHaveBeenCalled();
      expect(socket.send).not.toHaveBeenCalled();
    });

    it('checks how many answers the user already has running', async () => {
      generations.runningFor.mockReturnValue(3);
      limits.checkRunning.mockImplementation((running: number) => {
        if (running >= 3) throw new AppError('rate_limited', 'at most 3 answers may stream at once');
      });
      await expect(turns.userMessage({ content: 'Hi' }, connectionId, USER)).rejects.toMatchObject({ code: 'rate_limited' });
      expect(generations.runningFor).toHaveBeenCalledWith(USER);
      expect(limits.checkRunning).toHaveBeenCalledWith(3);
      expect(limits.consumeMessage).not.toHaveBeenCalled();
      expect(messages.insertMany).not.toHaveBeenCalled();
    });

    it('without a configured model: stores and publishes the user message, then model_not_configured, no generation', async () => {
      llm.isConfigured.mockReturnValue(false);
      chats.findOwned.mockResolvedValue(chatRow());
      const attempt = turns.userMessage({ id: 'r', content: 'Hi', chat_id: CHAT_ID }, connectionId, USER);
      await expect(attempt).rejects.toMatchObject({ code: 'model_not_configured', details: { chat_id: CHAT_ID } });
      expect(stored.map((m) => [m.role, m.content])).toEqual([['user', 'Hi']]);
      expect(fanout.publish.mock.calls.map(([room, frame]) => [room, frame.type])).toEqual([[chatRoom(CHAT_ID), 'user_message']]);
      expect(generations.start).not.toHaveBeenCalled();
      expect(messages.insertMany).toHaveBeenCalledTimes(1); // no assistant message left streaming
    });

    it('while shutting down refuses before storing anything', async () => {
      generations.isAccepting = false;
      await expect(turns.userMessage({ content: 'Hi' }, connectionId, USER)).rejects.toMatchObject({ code: 'shutting_down' });
      expect(chats.insert).not.toHaveBeenCalled();
      expect(messages.insertMany).not.toHaveBeenCalled();
    });
  });

  describe('regenerate', () => {
    it("the new answer's row has its own count of left-out turns, not the replaced one's", async () => {
      messages.markReplaced = jest.fn().mockResolvedValue(undefined);
      const old = messageRow({ id: 'a1', role: 'assistant', content: 'second answer', omitted_turns: 0 });
      stored.push(
        messageRow({ id: 'u0', role: 'user', content: 'long '.repeat(4000) }),
        messageRow({ id: 'a0', role: 'assistant', content: 'first answer' }),
        messageRow({ id: 'u1', role: 'user', content: 'second question' }),
        old,
      );
      messages.findOwned.mockResolvedValue(old);
      chats.findOwned.mockResolvedValue(chatRow());
      await turns.regenerate({ id: 'rg', message_id: 'a1' }, connectionId, USER);
      const spec = generations.start.mock.calls[0][0];
      expect(spec.startFields).toEqual({ omitted_turns: 1, previous_versions: ['a1'] });
      expect(stored[4]).toEqual(expect.objectContaining({ id: spec.messageId, role: 'assistant', omitted_turns: 1, previous_versions: ['a1'] }));
      expect(messages.markReplaced).toHaveBeenCalledWith(['a1'], spec.messageId);
    });
  });

  describe('resume', () => {
    const ended = messageRow({
      id: 'a1',
      role: 'assistant',
      content: 'Full answer',
      reasoning: 'thought',
      usage: USAGE,
      status: 'complete',
      seq: 7,
      request_id: 'orig-req',
    });

    it('of an ended message no longer in memory sends the stored agent_response_end with the original request id', async () => {
      messages.findOwned.mockResolvedValue(ended);
      messages.findById.mockResolvedValue(ended);
      generations.replay.mockImplementation(async () => {
        expect(registry.isInRoom(connectionId, chatRoom(CHAT_ID))).toBe(true); // joined before replaying
        return false;
      });

      await service.resume({ id: 'resume-req', message_id: 'a1', after_seq: 3 }, connectionId, USER);

      expect(messages.findOwned).toHaveBeenCalledWith('a1', USER);

      expect(generations.replay.mock.calls).toEqual([[connectionId, 'a1', 3]]);
      expect(sentToConnection()).toEqual([
        {
          type: 'agent_response_end',
          chat_id: CHAT_ID,
          message_id: 'a1',
          seq: 7,
          status: 'complete',
          content: 'Full answer',
          reasoning: 'thought',
          usage: USAGE,
          id: 'orig-req',
        },
      ]);
      expect(registry.isInRoom(connectionId, chatRoom(CHAT_ID))).toBe(true);
    });

    it('the stored end frame has no id, reasoning or usage when the message has none', async () => {
      const failed = messageRow({ id: 'a2', role: 'assistant', content: '', status: 'error', seq: 0 });
      messages.findOwned.mockResolvedValue(failed);
      messages.findById.mockResolvedValue(failed);
      generations.replay.mockResolvedValue(false);
      await service.resume({ message_id: 'a2', after_seq: 0 }, connectionId, USER);
      expect(sentToConnection()).toEqual([{ type: 'agent_response_end', chat_id: CHAT_ID, message_id: 'a2', seq: 0, status: 'error', content: '' }]);
    });

    it('of a message still in memory lets the generation replay it and sends nothing itself', async () => {
      messages.findOwned.mockResolvedValue(ended);
      generations.replay.mockResolvedValue(true);
      await service.resume({ message_id: 'a1', after_seq: 2 }, connectionId, USER);
      expect(generations.replay).toHaveBeenCalledWith(connectionId, 'a1', 2);
      expect(socket.send).not.toHaveBeenCalled();
      expect(messages.findOwned).toHaveBeenCalledTimes(1);
      expect(messages.findById).not.toHaveBeenCalled();
    });

    it("of an unknown (or another user's) message, or of a user message, is not_found and joins nothing", async () => {
      messages.findOwned.mockResolvedValueOnce(undefined);
      await expect(service.resume({ message_id: 'nope', after_seq: 0 }, connectionId, USER)).rejects.toMatchObject({
        code: 'not_found',
        details: { message_id: 'nope' },
      });
      messages.findOwned.mockResolvedValueOnce(messageRow({ id: 'u1', role: 'user', content: 'q' }));
      await expect(service.resume({ message_id: 'u1', after_seq: 0 }, connectionId, USER)).rejects.toMatchObject({ code: 'not_found' });
      expect(generations.replay).not.toHaveBeenCalled();
      expect(registry.get(connectionId)!.rooms?.size ?? 0).toBe(0);
    });
  });

  describe('subscribe', () => {
    it('joins the chat room and answers subscribed with the request id', async () => {
      chats.findOwned.mockResolvedValue(chatRow());
      await expect(service.subscribe({ id: 's1', chat_id: CHAT_ID }, connectionId, USER)).resolves.toEqual({
        type: 'subscribed',
        chat_id: CHAT_ID,
        id: 's1',
      });
      expect(registry.isInRoom(connectionId, chatRoom(CHAT_ID))).toBe(true);
    });

    it('to an unknown chat is not_found and joins nothing', async () => {
      chats.findOwned.mockResolvedValue(undefined);
      await expect(service.subscribe({ chat_id: CHAT_ID }, connectionId, USER)).rejects.toMatchObject({ code: 'not_found' });
      expect(chats.findOwned).toHaveBeenCalledWith(CHAT_ID, USER);
      expect(registry.isInRoom(connectionId, chatRoom(CHAT_ID))).toBe(false);
    });
  });

  describe('reads and edits', () => {
    it('getChat shows a message still streaming here with its live text, status and seq', async () => {
      chats.findOwned.mockResolvedValue(chatRow());
      stored.push(
        messageRow({ id: 'u1', role: 'user', content: 'q' }),
        messageRow({ id: 'a1', role: 'assistant', content: 'old snapshot', status: 'streaming', seq: 2, model: 'fake-model' }),
      );
      generations.find.mockReturnValue({ content: 'live text', reasoning: '', status: 'streaming', seq: 5 } as Generation);
      const view = await service.getChat(CHAT_ID, USER);
      expect(generations.find).toHaveBeenCalledWith('a1');
      expect(view.messages).toEqual([
        { id: 'u1', role: 'user', content: 'q', status: 'complete', created_at: T },
        { id: 'a1', role: 'assistant', content: 'live text', reasoning: null, status: 'streaming', seq: 5, model: 'fake-model', created_at: T },
      ]);
    });

    it('message views carry omitted_turns only where turns were left out', async () => {
      chats.findOwned.mockResolvedValue(chatRow());
      stored.push(
        messageRow({ id: 'u1', role: 'user', content: 'q' }),
        messageRow({ id: 'a0', role: 'assistant', content: 'none left out', omitted_turns: 0 }),
        messageRow({ id: 'a1', role: 'assistant', content: 'some left out', omitted_turns: 2 }),
        messageRow({ id: 'a2', role: 'assistant', content: 'from before the column' }),
      );
      const view = await service.getChat(CHAT_ID, USER);
      expect(view.messages.map((m) => m.omitted_turns)).toEqual([undefined, undefined, 2, undefined]);
      expect(view.messages[1]).not.toHaveProperty('omitted_turns');
      messages.findOwned.mockResolvedValue(stored[2]);
      expect(await service.getMessage('a1', USER)).toEqual(expect.objectContaining({ id: 'a1', omitted_turns: 2 }));
    });

    it('renameChat trims the title, stores it and tells the chat viewers', async () => {
      chats.findOwned.mockResolvedValue(chatRow());
      chats.update.mockImplementation(async (id, changes) => ({ ...chatRow({}, id), title: changes.title! }));
      await expect(service.renameChat(CHAT_ID, '  New name ', USER)).resolves.toEqual({ id: CHAT_ID, title: 'New name', created_at: T, updated_at: T });
      expect(chats.update).toHaveBeenCalledWith(CHAT_ID, { title: 'New name' });
      expect(fanout.publish.mock.calls).toEqual([[chatRoom(CHAT_ID), { type: 'chat_updated', chat_id: CHAT_ID, title: 'New name' }]]);
    });

    it('deleteChat stops the generations still streaming in it, then deletes it', async () => {
      chats.findOwned.mockResolvedValue(chatRow());
      chats.delete.mockResolvedValue(true);
      generations.stop.mockReturnValue(true);
      stored.push(
        messageRow({ id: 'a-done', role: 'assistant', content: 'x' }),
        messageRow({ id: 'a-live', role: 'assistant', content: '', status: 'streaming' }),
      );
      await service.deleteChat(CHAT_ID, USER);
      expect(generations.stop.mock.calls).toEqual([['a-live']]);
      expect(generations.stop.mock.invocationCallOrder[0]).toBeLessThan(chats.delete.mock.invocationCallOrder[0]);
      expect(chats.delete).toHaveBeenCalledWith(CHAT_ID);
    });
  });
});

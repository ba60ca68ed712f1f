import { ArgumentMetadata, INestApplicationContext, Module, Provider } from '@nestjs/common';
import { DiscoveryModule, NestFactory } from '@nestjs/core';
import type { WebSocket } from 'ws';
import { AppError } from '../common/app-error';
import { ConnectionRegistry } from '../transport/connection-registry';
import { toErrorFrame } from '../transport/error-frames';
import { Fanout } from '../transport/fanout';
import { FRAME_PARAM } from '../transport/frame-params';
import { FrameRouter } from '../transport/frame-router';
import { FrameValidationPipe } from '../transport/frame-validation.pipe';
import { Frame } from '../transport/frames';
import { ChatGateway } from './chat.gateway';
import { ChatService } from './chat.service';
import { TurnService } from './turn.service';
import { ResumeDto, SubscribeDto } from './dto/control.dto';
import { ChatOptionsDto, UserMessageDto } from './dto/user-message.dto';

const CHAT_ID = '22222222-2222-4222-8222-222222222222';
const MESSAGE_ID = '33333333-3333-4333-8333-333333333333';
const USER = 'user-1';

/** The real Nest injector around the unit (`@nestjs/testing` is not a dependency of the project). */
async function createContext(providers: Provider[]): Promise<INestApplicationContext> {
  @Module({ imports: [DiscoveryModule], providers })
  class UnitModule {}
  return NestFactory.createApplicationContext(UnitModule, { logger: false, abortOnError: false });
}

describe('ChatGateway', () => {
  let context: INestApplicationContext;
  let gateway: ChatGateway;
  let registry: ConnectionRegistry;
  /** One mock for both services: user_message goes to TurnService, resume and subscribe to ChatService. */
  let chat: jest.Mocked<Pick<TurnService, 'userMessage'> & Pick<ChatService, 'resume' | 'subscribe'>>;
  let fanout: { publish: jest.Mock };
  let socket: { readyState: number; send: jest.Mock };
  let ws: WebSocket;
  let connectionId: string;

  const unexpected = (name: string) =>
    jest.fn((...args: unknown[]) => {
      throw new Error(`unexpected call ChatService.${name}(${JSON.stringify(args)})`);
    });

  beforeEach(async () => {
    chat = {
      userMessage: unexpected('userMessage'),
      resume: unexpected('resume'),
      subscribe: unexpected('subscribe'),
    } as unknown as typeof chat;
    fanout = { publish: jest.fn() };
    context = await createContext([
      ChatGateway,
      FrameRouter,
      ConnectionRegistry,
      { provide: ChatService, useValue: chat },
      { provide: TurnService, useValue: chat },
      { provide: Fanout, useValue: fanout },
    ]);
    gateway = context.get(ChatGateway);
    registry = context.get(ConnectionRegistry);
    socket = { readyState: 1, send: jest.fn() };
    ws = socket as unknown as WebSocket;
    connectionId = registry.add(ws, { id: USER }).id;
  });

  afterEach(() => context.close());

  const otherCalls = (except: keyof typeof chat) =>
    (Object.keys(chat) as (keyof typeof chat)[]).filter((k) => k !== except).map((k) => chat[k].mock.calls.length);

  it('user_message: one service call with the DTO, the connection id and its user; errors pass through to the filter', async () => {
    chat.userMessage.mockResolvedValueOnce(undefined);
    const dto: UserMessageDto = { id: 'r1', content: 'hello', chat_id: CHAT_ID };
    await expect(gateway.handleMessage({ ...dto, type: 'user_message' }, connectionId)).resolves.toBeUndefined();
    expect(chat.userMessage.mock.calls).toEqual([[{ ...dto, type: 'user_message' }, connectionId, USER]]);
    expect(otherCalls('userMessage')).toEqual([0, 0]);

    const failure = new AppError('not_found', 'no such chat', { chat_id: CHAT_ID });
    chat.userMessage.mockRejectedValueOnce(failure);
    await expect(gateway.handleMessage({ ...dto, type: 'user_message' }, connectionId)).rejects.toBe(failure);
    expect(socket.send).not.toHaveBeenCalled();
  });

  it('a socket without a user (no upgrade check ran) reaches no service method', async () => {
    const anonymous = { readyState: 1, send: jest.fn() } as unknown as WebSocket;
    const { id } = registry.add(anonymous);
    await expect(gateway.handleMessage({ content: 'hi', type: 'user_message' }, id)).rejects.toThrow('has no user');
    await expect(gateway.handleMessage({ message_id: MESSAGE_ID, after_seq: 0, type: 'resume' }, id)).rejects.toThrow('has no user');
    expect(Object.values(chat as unknown as Record<string, jest.Mock>).map((method) => method.mock.calls.length)).toEqual([0, 0, 0]);
  });

  it('does not handle stop frames (the StopGateway of generation/ owns them)', () => {
    expect([...context.get(FrameRouter).build().keys()].sort()).toEqual(['regenerate', 'resume', 'subscribe', 'user_message']);
  });

  it('resume: one service call with the DTO, the connection id and its user', async () => {
    chat.resume.mockResolvedValueOnce(undefined);
    const dto: ResumeDto = { message_id: MESSAGE_ID, after_seq: 4 };
    await gateway.handleMessage({ ...dto, type: 'resume' }, connectionId);
    expect(chat.resume.mock.calls).toEqual([[{ ...dto, type: 'resume' }, connectionId, USER]]);
    expect(otherCalls('resume')).toEqual([0, 0]);
  });

  it('subscribe: one service call (DTO, connection id, user), and its subscribed frame goes to this connection through the registry', async () => {
    const answer: Frame = { type: 'subscribed', chat_id: CHAT_ID, id: 'sub-1' };
    chat.subscribe.mockResolvedValueOnce(answer);
    const dto: SubscribeDto = { id: 'sub-1', chat_id: CHAT_ID };
    const send = jest.spyOn(registry, 'send');
    await gateway.handleMessage({ ...dto, type: 'subscribe' }, connectionId);
    expect(chat.subscribe.mock.calls).toEqual([[{ ...dto, type: 'subscribe' }, connectionId, USER]]);
    expect(send.mock.calls).toEqual([[connectionId, answer]]);
    expect(socket.send.mock.calls).toEqual([[JSON.stringify(answer)]]);
    expect(otherCalls('subscribe')).toEqual([0, 0]);
  });

  it('subscribe to an unknown chat sends nothing itself and lets the error reach the filter', async () => {
    chat.subscribe.mockRejectedValueOnce(new AppError('not_found', 'no such chat'));
    await expect(gateway.handleMessage({ chat_id: CHAT_ID, type: 'subscribe' }, connectionId)).rejects.toMatchObject({ code: 'not_found' });
    expect(socket.send).not.toHaveBeenCalled();
  });

  it('broadcast: to the chat room when the frame names a chat, else to every connection', () => {
    const other = { readyState: 1, send: jest.fn() };
    registry.add(other as unknown as WebSocket);
    gateway.broadcast({ type: 'chat_updated', chat_id: CHAT_ID, title: 'T' });
    expect(fanout.publish.mock.calls).toEqual([[`chat:${CHAT_ID}`, { type: 'chat_updated', chat_id: CHAT_ID, title: 'T' }]]);
    expect(socket.send).not.toHaveBeenCalled();

    gateway.broadcast({ type: 'notice', text: 'maintenance' });
    expect(fanout.publish).toHaveBeenCalledTimes(1);
    expect(socket.send.mock.calls).toEqual([['{"type":"notice","text":"maintenance"}']]);
    expect(other.send.mock.calls).toEqual([['{"type":"notice","text":"maintenance"}']]);
  });

  describe('wiring: FrameRouter routes each type to handleMessage through Nest (pipe, filter)', () => {
    it.each([
      ['user_message', UserMessageDto, { content: 'hi', chat_id: CHAT_ID }, 'userMessage'],
      ['resume', ResumeDto, { message_id: MESSAGE_ID, after_seq: 2 }, 'resume'],
    ] as const)('"%s" reaches handleMessage as a validated %p with the connection id', async (type, dto, body, method) => {
      chat[method].mockResolvedValueOnce(undefined as never);
      const handle = context.get(FrameRouter).build().get(type)!;
      await expect(handle(ws, { type, id: 'r1', ...body }, type)).resolves.toBeUndefined();
      const [[msg, id, user]] = chat[method].mock.calls as unknown as [[object, string, string]];
      expect(msg).toBeInstanceOf(dto);
      expect(msg).toEqual(expect.objectContaining({ type, id: 'r1', ...body }));
      expect([id, user]).toEqual([connectionId, USER]);
    });

    it('a frame that fails its DTO never reaches the service: the filter returns the error frame with the request id', async () => {
      const handle = context.get(FrameRouter).build().get('subscribe')!;
      await expect(handle(ws, { type: 'subscribe', id: 'bad', chat_id: 'x' }, 'subscribe')).resolves.toMatchObject({
        type: 'error',
        code: 'invalid_message',
        field: 'chat_id',
        id: 'bad',
      });
      expect(chat.subscribe).not.toHaveBeenCalled();
    });

    it('a service error becomes an error frame with the request id', async () => {
      chat.userMessage.mockRejectedValueOnce(new AppError('not_found', 'no such chat', { chat_id: CHAT_ID }));
      const handle = context.get(FrameRouter).build().get('user_message')!;
      await expect(handle(ws, { type: 'user_message', id: 'q', content: 'hi', chat_id: CHAT_ID }, 'user_message')).resolves.toEqual({
        type: 'error',
        code: 'not_found',
        message: 'no such chat',
        chat_id: CHAT_ID,
        id: 'q',
      });
      expect(socket.send).not.toHaveBeenCalled();
    });
  });

  describe('FrameValidationPipe on the gateway DTOs', () => {
    const pipe = new FrameValidationPipe();
    /** What Nest hands the pipe for a frame parameter (a 'custom' one, see FrameParamtype). */
    const body = (metatype: ArgumentMetadata['metatype']): ArgumentMetadata => ({
      type: 'custom',
      data: FRAME_PARAM,
      metatype,
    });

    async function rejection(value: unknown, metatype: ArgumentMetadata['metatype'] = UserMessageDto): Promise<AppError> {
      try {
        await pipe.transform(value, body(metatype));
      } catch (error) {
        expect(error).toBeInstanceOf(AppError);
        return error as AppError;
      }
      throw new Error(`expected ${JSON.stringify(value)} to be refused`);
    }

    it('turns a bad nested option into invalid_message naming options.temperature', async () => {
      const error = await rejection({ type: 'user_message', content: 'hi', options: { temperature: 3 } });
      expect(error.code).toBe('invalid_message');
      expect(error.message).toBe('options.temperature: temperature must not be greater than 2');
      expect(error.details).toEqual({ field: 'options.temperature' });
      expect(toErrorFrame(error, 'req-9')).toEqual({
        type: 'error',
        code: 'invalid_message',
        message: 'options.temperature: temperature must not be greater than 2',
        field: 'options.temperature',
        id: 'req-9',
      });
    });

    it.each([
      ['content missing', 'content', { type: 'user_message' }],
      ['content empty', 'content', { content: '' }],
      ['content too long', 'content', { content: 'x'.repeat(32_001) }],
      ['content not a string', 'content', { content: 42 }],
      ['chat_id not a UUID', 'chat_id', { content: 'hi', chat_id: 'nope' }],
      ['negative temperature', 'options.temperature', { content: 'hi', options: { temperature: -0.1 } }],
      ['temperature as text', 'options.temperature', { content: 'hi', options: { temperature: '1' } }],
      ['max_tokens of 0', 'options.max_tokens', { content: 'hi', options: { max_tokens: 0 } }],
      ['fractional max_tokens', 'options.max_tokens', { content: 'hi', options: { max_tokens: 1.5 } }],
      ['thinking not a boolean', 'options.thinking', { content: 'hi', options: { thinking: 'yes' } }],
      ['attachments not strings', 'attachments', { content: 'hi', attachments: [1] }],
    ])('user_message with %s → invalid_message on %s', async (_name, field, value) => {
      const error = await rejection(value);
      expect(error.code).toBe('invalid_message');
      expect(error.details).toEqual({ field });
      expect(error.message.startsWith(`${field}: `)).toBe(true);
    });

    it.each([
      ['resume without after_seq', 'after_seq', { message_id: MESSAGE_ID }, ResumeDto],
      ['resume with a negative after_seq', 'after_seq', { message_id: MESSAGE_ID, after_seq: -1 }, ResumeDto],
      ['subscribe with a bad chat_id', 'chat_id', { chat_id: 'x' }, SubscribeDto],
    ])('%s → invalid_message on %s', async (_name, field, value, dto) => {
      const error = await rejection(value, dto);
      expect(error.code).toBe('invalid_message');
      expect(error.details).toEqual({ field });
    });

    it('passes a valid frame as a DTO instance, keeping null options (they reset a setting)', async () => {
      const value = (await pipe.transform(
        { type: 'user_message', id: 'r', content: 'hi', chat_id: CHAT_ID, options: { temperature: null, max_tokens: 5 } },
        body(UserMessageDto),
      )) as UserMessageDto;
      expect(value).toBeInstanceOf(UserMessageDto);
      expect(value.options).toBeInstanceOf(ChatOptionsDto);
      expect(value).toEqual(expect.objectContaining({ id: 'r', content: 'hi', chat_id: CHAT_ID }));
      expect(value.options).toEqual(expect.objectContaining({ temperature: null, max_tokens: 5 }));
    });
  });
});

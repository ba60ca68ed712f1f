import { INestApplicationContext, Logger, Module, Provider } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Observable, Subject, throwError } from 'rxjs';
import type { WebSocket } from 'ws';
import { AppError } from '../common/app-error';
import { Environment, validateEnvironment } from '../config/environment';
import { LlmEvent, LlmProvider, LlmRequest, LlmUsage } from '../llm/llm.provider';
import { MetricsService } from '../metrics/metrics.service';
import { FinalMessage, MessagesRepository, newMessage } from '../storage/messages.repository';
import { ConnectionRegistry } from '../transport/connection-registry';
import { Fanout } from '../transport/fanout';
import { Frame } from '../transport/frames';
import { GenerationSpec, storedEndFrame } from './generation';
import { GenerationService, SNAPSHOT_INTERVAL_MS } from './generation.service';
import { GenerationLog, LocalGenerationLog } from './generation-log';
import { Instances, LocalInstances } from './instances';
import { StopRegistry } from './stop.registry';

/** Lets the current turn of the event loop end (pieces pending in it go out as one frame). */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * One upstream request, driven by hand; counts its teardowns (= the HTTP request aborted).
 * `content`/`reasoning` emit their pieces in one turn of the event loop (the service sends them as
 * one frame); the `…Apart` variants let a turn pass after each piece (one frame each).
 */
class FakeStream {
  readonly events = new Subject<LlmEvent>();
  subscriptions = 0;
  teardowns = 0;
  constructor(readonly request: LlmRequest) {}

  emit(...events: LlmEvent[]): void {
    for (const event of events) this.events.next(event);
  }
  content(...texts: string[]): void {
    for (const text of texts) this.events.next({ type: 'content', text });
  }
  reasoning(...texts: string[]): void {
    for (const text of texts) this.events.next({ type: 'reasoning', text });
  }
  async contentApart(...texts: string[]): Promise<void> {
    for (const text of texts) {
      this.content(text);
      await nextTurn();
    }
  }
  async reasoningApart(...texts: string[]): Promise<void> {
    for (const text of texts) {
      this.reasoning(text);
      await nextTurn();
    }
  }
  finish(complete = true): void {
    this.events.next({ type: 'finish', reason: complete ? 'stop' : 'insufficient_system_resource', complete });
  }
}

class FakeLlm extends LlmProvider {
  readonly defaultModel = 'fake-model';
  readonly streams: FakeStream[] = [];
  /** When set, the next `stream()` returns this instead of a hand-driven stream. */
  next?: Observable<LlmEvent>;

  isConfigured(): boolean {
    return true;
  }

  stream(request: LlmRequest): Observable<LlmEvent> {
    if (this.next) {
      const next = this.next;
      this.next = undefined;
      return next;
    }
    const fake = new FakeStream(request);
    this.streams.push(fake);
    return new Observable<LlmEvent>((subscriber) => {
      fake.subscriptions += 1;
      const inner = fake.events.subscribe(subscriber);
      return () => {
        fake.teardowns += 1;
        inner.unsubscribe();
      };
    });
  }

  listModels(): Promise<string[]> {
    throw new Error('unexpected call: listModels');
  }
}

/** Records every published frame (a copy, as it was at publish time). */
class RecordingFanout extends Fanout {
  readonly published: { room: string; frame: Frame }[] = [];
  /** When set, frames also reach the registry's connections in the room (as LocalFanout does). */
  registry?: ConnectionRegistry;
  constructor(private readonly order: string[]) {
    super();
  }
  publish(room: string, frame: Frame): void {
    this.published.push({ room, frame: structuredClone(frame) });
    this.order.push(`publish:${frame.type}`);
    this.registry?.publish(room, frame);
  }
  join(connectionId: string, room: string): Promise<void> {
    throw new Error(`unexpected call Fanout.join(${connectionId}, ${room})`);
  }
  frames(messageId?: string): Frame[] {
    return this.published.map((p) => p.frame).filter((f) => messageId === undefined || f.message_id === messageId);
  }
  types(messageId?: string): string[] {
    return this.frames(messageId).map((f) => f.type);
  }
}

/** A mock whose every method fails the test when called without being set up. */
function strictMock<T extends object>(cls: abstract new (...args: never[]) => T): jest.Mocked<T> {
  const mock: Record<string, jest.Mock> = {};
  for (const key of Object.getOwnPropertyNames(cls.prototype)) {
    if (key === 'constructor' || typeof Object.getOwnPropertyDescriptor(cls.prototype, key)?.value !== 'function') continue;
    mock[key] = jest.fn((...args: unknown[]) => {
      throw new Error(`unexpected call ${cls.name}.${key}(${JSON.stringify(args)})`);
    });
  }
  return mock as unknown as jest.Mocked<T>;
}

const DRAIN_MS = 200;
const USAGE: LlmUsage = { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 };

function spec(messageId = 'm1', overrides: Partial<GenerationSpec> = {}): GenerationSpec {
  return {
    chatId: 'c1',
    messageId,
    requestId: 'req-1',
    model: 'fake-model',
    room: 'chat:c1',
    ownerId: 'user-1',
    request: { messages: [{ role: 'user', content: 'hi' }], model: 'fake-model' },
    ...overrides,
  };
}

/**
 * The real Nest injector around the unit under test (`@nestjs/testing` is not a dependency of the
 * project, so this is `Test.createTestingModule` by hand: every collaborator given as a value).
 * Creating the context runs `onModuleInit`; closing it runs the shutdown hooks.
 */
async function createContext(providers: Provider[]): Promise<INestApplicationContext> {
  @Module({ providers })
  class UnitModule {}
  return NestFactory.createApplicationContext(UnitModule, { logger: false, abortOnError: false });
}

const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('GenerationService', () => {
  let moduleRef: INestApplicationContext;
  let service: GenerationService;
  let llm: FakeLlm;
  let fanout: RecordingFanout;
  let registry: ConnectionRegistry;
  let stops: StopRegistry;
  let messages: jest.Mocked<MessagesRepository>;
  let order: string[];
  let logError: jest.SpyInstance;
  let logWarn: jest.SpyInstance;
  /** Every message snapshot written, as [id, content, reasoning, seq], over all batches. */
  const snapshots = () => messages.snapshotMany.mock.calls.flatMap(([batch]) => batch.map((m) => [m.id, m.content, m.reasoning, m.seq]));

  beforeEach(async () => {
    order = [];
    llm = new FakeLlm();
    fanout = new RecordingFanout(order);
    messages = strictMock(MessagesRepository);
    messages.finish.mockImplementation(async (id: string, final: FinalMessage) => {
      order.push(`finish:${final.status}`);
    });
    messages.snapshotMany.mockResolvedValue(undefined);
    messages.interruptAllStreaming.mockResolvedValue(0);
    logError = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    logWarn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);

    moduleRef = await createContext([
      GenerationService,
      ConnectionRegistry,
      StopRegistry,
      MetricsService,
      { provide: GenerationLog, useClass: LocalGenerationLog }, // one instance: in-memory logs
      { provide: Instances, useClass: LocalInstances },
      { provide: LlmProvider, useValue: llm },
      { provide: Fanout, useValue: fanout },
      { provide: MessagesRepository, useValue: messages },
      { provide: Environment, useValue: validateEnvironment({ DRAIN_TIMEOUT_MS: String(DRAIN_MS) }) },
    ]);
    service = moduleRef.get(GenerationService);
    registry = moduleRef.get(ConnectionRegistry);
    stops = moduleRef.get(StopRegistry);
  });

  afterEach(async () => {
    jest.useRealTimers();
    await moduleRef.close();
    jest.restoreAllMocks();
  });

  it('publishes start, numbered pieces (reasoning and content share one seq) and a full end frame', async () => {
    const given = spec();
    const generation = service.start(given);
    const upstream = llm.streams[0];
    expect(upstream.request).toEqual({ ...given.request, onRetry: expect.any(Function) });
    expect(upstream.subscriptions).toBe(1);

    await upstream.reasoningApart('Let me', ' think');
    await upstream.contentApart('Hel', 'lo');
    upstream.emit({ type: 'usage', usage: USAGE });
    upstream.finish();
    await generation.done;

    const base = { chat_id: 'c1', message_id: 'm1', id: 'req-1' };
    expect(fanout.published.map((p) => p.room)).toEqual(Array(6).fill('chat:c1'));
    expect(fanout.frames()).toEqual([
      { type: 'agent_response_start', ...base, model: 'fake-model' },
      { type: 'agent_reasoning', ...base, seq: 1, content: 'Let me' },
      { type: 'agent_reasoning', ...base, seq: 2, content: ' think' },
      { type: 'agent_response', ...base, seq: 3, content: 'Hel' },
      { type: 'agent_response', ...base, seq: 4, content: 'lo' },
      {
        type: 'agent_response_end',
        ...base,
        seq: 4,
        status: 'complete',
        content: 'Hello',
        reasoning: 'Let me think',
        usage: USAGE,
        finish_reason: 'stop',
      },
    ]);
    expect(messages.finish.mock.calls).toEqual([
      ['m1', { content: 'Hello', reasoning: 'Let me think', status: 'complete', seq: 4, usage: USAGE, error_code: null, finish_reason: 'stop' }],
    ]);
    expect(upstream.teardowns).toBe(1);
    expect(service.runningCount).toBe(0);
    expect(service.find('m1')?.status).toBe('complete');
  });

  it('an ended answer stays findable for resume 10 minutes, without a timer of its own; the oldest leave past 1,000', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    const end = async (id: string) => {
      const generation = service.start(spec(id));
      llm.streams.at(-1)!.finish();
      await generation.done;
    };
    await end('m1');
    expect(service.find('m1')?.status).toBe('complete');
    const timers = jest.getTimerCount();
    await end('m2');
    expect(jest.getTimerCount()).toBe(timers);
    jest.setSystemTime(Date.now() + 10 * 60_000 - 1);
    expect(service.find('m1')).toBeDefined();
    jest.setSystemTime(Date.now() + 2);
    expect(service.find('m1')).toBeUndefined();
    for (let i = 0; i < 1001; i++) await end(`n${i}`);
    expect(service.find('n0')).toBeUndefined();
    expect(service.find('n1')).toBeDefined();
    expect(service.find('n1000')).toBeDefined();
    jest.useRealTimers();
  });

  it('frames carry no id when the request had none; the end frame has no reasoning or usage when there were none', async () => {
    const generation = service.start(spec('m1', { requestId: undefined }));
    llm.streams[0].content('Just text');
    llm.streams[0].finish();
    await generation.done;
    for (const frame of fanout.frames()) expect(frame).not.toHaveProperty('id');
    expect(fanout.frames()[2]).toEqual({
      type: 'agent_response_end',
      chat_id: 'c1',
      message_id: 'm1',
      seq: 1,
      status: 'complete',
      content: 'Just text',
      finish_reason: 'stop',
    });
    expect(messages.finish).toHaveBeenCalledWith('m1', expect.objectContaining({ reasoning: null, usage: null }));
  });

  it('a cut-short answer (finish_reason length) is complete, and its reason reaches the end frame and the stored row', async () => {
    const generation = service.start(spec());
    llm.streams[0].content('The first half');
    llm.streams[0].events.next({ type: 'finish', reason: 'length', complete: true });
    await generation.done;
    expect(fanout.frames().at(-1)).toEqual(
      expect.objectContaining({ type: 'agent_response_end', status: 'complete', content: 'The first half', finish_reason: 'length' }),
    );
    expect(messages.finish).toHaveBeenCalledWith('m1', expect.objectContaining({ status: 'complete', finish_reason: 'length' }));
    const row = newMessage({ id: 'm1', chat_id: 'c1', role: 'assistant', content: 'The first half', status: 'complete' });
    expect(storedEndFrame({ ...row, finish_reason: 'length' })).toMatchObject({ finish_reason: 'length' });
    expect(storedEndFrame(row)).not.toHaveProperty('finish_reason');
  });

  it('finish with complete=false ends as interrupted, keeping the text', async () => {
    const generation = service.start(spec());
    llm.streams[0].content('cut sh');
    llm.streams[0].finish(false);
    await generation.done;
    expect(fanout.frames().at(-1)).toEqual(expect.objectContaining({ type: 'agent_response_end', status: 'interrupted', content: 'cut sh', seq: 1 }));
    expect(messages.finish).toHaveBeenCalledWith('m1', expect.objectContaining({ status: 'interrupted', content: 'cut sh' }));
  });

  it('an upstream that completes without a finish event ends as interrupted', async () => {
    const generation = service.start(spec());
    llm.streams[0].content('a');
    llm.streams[0].events.complete();
    await generation.done;
    expect(fanout.types()).toEqual(['agent_response_start', 'agent_response', 'agent_response_end']);
    expect(fanout.frames().at(-1)?.status).toBe('interrupted');
  });

  it('events after finish are ignored and the generation ends exactly once', async () => {
    const generation = service.start(spec());
    const upstream = llm.streams[0];
    upstream.content('one');
    upstream.finish();
    upstream.content('late'); // already unsubscribed: nobody listens
    await generation.done;
    expect(fanout.types()).toEqual(['agent_response_start', 'agent_response', 'agent_response_end']);
    expect(messages.finish).toHaveBeenCalledTimes(1);
    expect(service.stop('m1')).toBe(false);
  });

  it('an error before any content sends an error frame with its code, then ends with status error', async () => {
    const generation = service.start(spec());
    llm.streams[0].events.error(new AppError('upstream_auth', 'the model API refused the key'));
    await generation.done;
    const base = { chat_id: 'c1', message_id: 'm1', id: 'req-1' };
    expect(fanout.frames()).toEqual([
      { type: 'agent_response_start', ...base, model: 'fake-model' },
      { type: 'error', ...base, code: 'upstream_auth', message: 'the model API refused the key' },
      { type: 'agent_response_end', ...base, seq: 0, status: 'error', content: '' },
    ]);
    expect(messages.finish.mock.calls).toEqual([
      ['m1', { content: '', reasoning: null, status: 'error', seq: 0, usage: null, error_code: 'upstream_auth', finish_reason: null }],
    ]);
    expect(logError).not.toHaveBeenCalled();
  });

  it('an error after some content keeps it: error frame, then interrupted', async () => {
    const generation = service.start(spec());
    llm.streams[0].content('Half an ');
    llm.streams[0].events.error(new AppError('upstream_interrupted', 'the stream broke off'));
    await generation.done;
    expect(fanout.types()).toEqual(['agent_response_start', 'agent_response', 'error', 'agent_response_end']);
    expect(fanout.frames()[2]).toEqual(expect.objectContaining({ code: 'upstream_interrupted', message: 'the stream broke off' }));
    expect(fanout.frames()[3]).toEqual(expect.objectContaining({ status: 'interrupted', content: 'Half an ', seq: 1 }));
    expect(messages.finish).toHaveBeenCalledWith(
      'm1',
      expect.objectContaining({ status: 'interrupted', content: 'Half an ', error_code: 'upstream_interrupted' }),
    );
  });

  it('an unexpected (non-AppError) failure becomes code internal, says nothing of the cause, and is logged', async () => {
    const generation = service.start(spec());
    llm.streams[0].events.error(new TypeError('secret detail'));
    await generation.done;
    expect(fanout.frames()[1]).toEqual(expect.objectContaining({ type: 'error', code: 'internal', message: 'the model call failed unexpectedly' }));
    expect(JSON.stringify(fanout.frames())).not.toContain('secret detail');
    expect(fanout.frames()[2]).toEqual(expect.objectContaining({ status: 'error' }));
    expect(logError).toHaveBeenCalledTimes(1);
  });

  it('a stream that fails at once (synchronously, on subscribe) still ends in order', async () => {
    llm.next = throwError(() => new AppError('model_not_configured', 'no key'));
    const generation = service.start(spec());
    await generation.done;
    expect(fanout.types()).toEqual(['agent_response_start', 'error', 'agent_response_end']);
    expect(fanout.frames()[2].status).toBe('error');
    expect(service.runningCount).toBe(0);
  });

  it('stop() aborts upstream (unsubscribes), keeps exactly the published text, ends as stopped', async () => {
    const generation = service.start(spec());
    const upstream = llm.streams[0];
    await upstream.reasoningApart('hmm');
    await upstream.contentApart('Hello', ' wor');

    expect(service.stop('m1')).toBe(true);
    expect(upstream.teardowns).toBe(1);
    expect(upstream.events.observed).toBe(false);
    upstream.content('ld!'); // arrives after the abort: must not show up anywhere
    await generation.done;

    const published = fanout
      .frames()
      .filter((f) => f.type === 'agent_response')
      .map((f) => f.content)
      .join('');
    expect(published).toBe('Hello wor');
    expect(fanout.frames().at(-1)).toEqual({
      type: 'agent_response_end',
      chat_id: 'c1',
      message_id: 'm1',
      id: 'req-1',
      seq: 3,
      status: 'stopped',
      content: 'Hello wor',
      reasoning: 'hmm',
    });
    expect(messages.finish).toHaveBeenCalledWith('m1', expect.objectContaining({ status: 'stopped', content: 'Hello wor', seq: 3 }));
    expect(service.stop('m1')).toBe(false);
    expect(service.stop('no-such-message')).toBe(false);
    expect(messages.finish).toHaveBeenCalledTimes(1);
  });

  it('a stop frame (through the StopRegistry) from its owner stops it; anyone else gets not_found', async () => {
    const generation = service.start(spec('m1', { ownerId: 'alice' }));
    llm.streams[0].content('so far');
    expect(stops.isRunning('m1')).toBe(true);

    await expect(stops.stop('m1', 'mallory')).rejects.toMatchObject({ code: 'not_found', details: { message_id: 'm1' } });
    expect(llm.streams[0].teardowns).toBe(0);
    expect(generation.status).toBe('streaming');

    await stops.stop('m1', 'alice');
    await generation.done;
    expect(llm.streams[0].teardowns).toBe(1);
    expect(fanout.frames().at(-1)).toEqual(expect.objectContaining({ type: 'agent_response_end', status: 'stopped', content: 'so far' }));
    expect(stops.isRunning('m1')).toBe(false);
  });

  it('a stop frame for an ended answer of its owner does nothing; of an unknown, foreign or user message is not_found', async () => {
    const generation = service.start(spec('m1', { ownerId: 'alice' }));
    llm.streams[0].finish();
    await generation.done;
    messages.findOwned.mockImplementation(async (id: string, userId: string) => {
      if (userId !== 'alice') return undefined;
      if (id === 'm1') return { id, role: 'assistant' } as never;
      if (id === 'question') return { id, role: 'user' } as never;
      return undefined;
    });

    await expect(stops.stop('m1', 'alice')).resolves.toBeUndefined();
    await expect(stops.stop('m1', 'mallory')).rejects.toMatchObject({ code: 'not_found' });
    await expect(stops.stop('ghost', 'alice')).rejects.toMatchObject({ code: 'not_found' });
    await expect(stops.stop('question', 'alice')).rejects.toMatchObject({ code: 'not_found' }); // a user message is no job
    expect(messages.finish).toHaveBeenCalledTimes(1);
    expect(fanout.types().filter((t) => t === 'agent_response_end')).toHaveLength(1);
  });

  describe('pieces of one turn of the event loop go out as one frame', () => {
    const base = { chat_id: 'c1', message_id: 'm1', id: 'req-1' };
    const pieces = (messageId = 'm1') =>
      fanout
        .frames(messageId)
        .filter((f) => f.type === 'agent_response' || f.type === 'agent_reasoning')
        .map((f) => [f.type, f.seq, f.content]);

    it("several pieces in one turn: one frame with their text, seq +1; the next turn's pieces are the next frame", async () => {
      const generation = service.start(spec());
      const upstream = llm.streams[0];
      upstream.content('Hel', 'lo', ', ');
      expect(fanout.types()).toEqual(['agent_response_start']); // nothing sent until the turn ends
      await nextTurn();
      expect(fanout.frames()).toEqual([
        { type: 'agent_response_start', ...base, model: 'fake-model' },
        { type: 'agent_response', ...base, seq: 1, content: 'Hello, ' },
      ]);
      upstream.content('wor', 'ld');
      await nextTurn();
      upstream.finish();
      await generation.done;
      expect(pieces()).toEqual([
        ['agent_response', 1, 'Hello, '],
        ['agent_response', 2, 'world'],
      ]);
      expect(fanout.frames().at(-1)).toEqual(expect.objectContaining({ type: 'agent_response_end', seq: 2, content: 'Hello, world' }));
      expect(messages.finish).toHaveBeenCalledWith('m1', expect.objectContaining({ content: 'Hello, world', seq: 2 }));
    });

    it('all generations with pending text are sent by one shared setImmediate', async () => {
      service.start(spec('m1'));
      service.start(spec('m2'));
      const immediate = jest.spyOn(global, 'setImmediate');
      llm.streams[0].content('a', 'b');
      llm.streams[1].reasoning('x');
      llm.streams[1].content('y', 'z');
      llm.streams[0].content('c');
      expect(immediate).toHaveBeenCalledTimes(1);
      immediate.mockRestore();
      await nextTurn();
      expect(pieces('m1')).toEqual([['agent_response', 1, 'abc']]);
      expect(pieces('m2')).toEqual([
        ['agent_reasoning', 1, 'x'],
        ['agent_response', 2, 'yz'],
      ]);
    });

    it('a change of kind inside one turn sends what waits first: frames in order, one kind each', async () => {
      const generation = service.start(spec());
      const upstream = llm.streams[0];
      upstream.reasoning('Let', ' me');
      upstream.content('A', 'B');
      upstream.reasoning('!');
      await nextTurn();
      upstream.finish();
      await generation.done;
      expect(pieces()).toEqual([
        ['agent_reasoning', 1, 'Let me'],
        ['agent_response', 2, 'AB'],
        ['agent_reasoning', 3, '!'],
      ]);
      expect(messages.finish).toHaveBeenCalledWith('m1', expect.objectContaining({ content: 'AB', reasoning: 'Let me!', seq: 3 }));
    });

    it('finish right after pieces in the same turn: their frame comes before the end and is in the stored message', async () => {
      const generation = service.start(spec());
      llm.streams[0].reasoning('hm');
      llm.streams[0].content('x', 'y');
      llm.streams[0].emit({ type: 'usage', usage: USAGE });
      llm.streams[0].finish();
      await generation.done;
      expect(order).toEqual([
        'publish:agent_response_start',
        'publish:agent_reasoning',
        'publish:agent_response',
        'finish:complete',
        'publish:agent_response_end',
      ]);
      expect(pieces()).toEqual([
        ['agent_reasoning', 1, 'hm'],
        ['agent_response', 2, 'xy'],
      ]);
      expect(fanout.frames().at(-1)).toEqual(expect.objectContaining({ seq: 2, status: 'complete', content: 'xy', reasoning: 'hm', usage: USAGE }));
      expect(messages.finish.mock.calls).toEqual([
        ['m1', { content: 'xy', reasoning: 'hm', status: 'complete', seq: 2, usage: USAGE, error_code: null, finish_reason: 'stop' }],
      ]);
    });

    it('stop right after pieces in the same turn keeps them: one frame, then the end', async () => {
      const generation = service.start(spec());
      llm.streams[0].content('so', ' far');
      expect(service.stop('m1')).toBe(true);
      await generation.done;
      expect(fanout.types()).toEqual(['agent_response_start', 'agent_response', 'agent_response_end']);
      expect(pieces()).toEqual([['agent_response', 1, 'so far']]);
      expect(fanout.frames().at(-1)).toEqual(expect.objectContaining({ status: 'stopped', content: 'so far', seq: 1 }));
      expect(messages.finish).toHaveBeenCalledWith('m1', expect.objectContaining({ status: 'stopped', content: 'so far', seq: 1 }));
    });

    it('an error right after pieces in the same turn: their frame, then the error, then interrupted with the text', async () => {
      const generation = service.start(spec());
      llm.streams[0].content('Half', ' an');
      llm.streams[0].events.error(new AppError('upstream_interrupted', 'the stream broke off'));
      await generation.done;
      expect(fanout.types()).toEqual(['agent_response_start', 'agent_response', 'error', 'agent_response_end']);
      expect(pieces()).toEqual([['agent_response', 1, 'Half an']]);
      expect(fanout.frames().at(-1)).toEqual(expect.objectContaining({ status: 'interrupted', content: 'Half an', seq: 1 }));
      expect(messages.finish).toHaveBeenCalledWith('m1', expect.objectContaining({ status: 'interrupted', content: 'Half an', seq: 1 }));
    });

    it('the drain at shutdown sends pending text before ending as interrupted', async () => {
      jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
      const generation = service.start(spec());
      const drain = service.beforeApplicationShutdown();
      await jest.advanceTimersByTimeAsync(DRAIN_MS - 1);
      llm.streams[0].content('par', 'tial');
      jest.advanceTimersByTime(1); // the drain times out in the same turn as the pieces
      await drain;
      await generation.done;
      expect(pieces()).toEqual([['agent_response', 1, 'partial']]);
      expect(fanout.frames().at(-1)).toEqual(expect.objectContaining({ status: 'interrupted', content: 'partial', seq: 1 }));
    });

    it('a snapshot taken with text pending sends it first and stores it with its seq', async () => {
      jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
      service.start(spec());
      await llm.streams[0].contentApart('a');
      llm.streams[0].content('b', 'c');
      jest.advanceTimersByTime(SNAPSHOT_INTERVAL_MS); // the snapshot timer fires within this same turn
      expect(snapshots()).toEqual([['m1', 'abc', null, 2]]);
      expect(pieces()).toEqual([
        ['agent_response', 1, 'a'],
        ['agent_response', 2, 'bc'],
      ]);
    });

    it('a resume in the middle of a pending flush is exact: first replayed seq = after_seq + 1, replay + live = the whole text', async () => {
      fanout.registry = registry;
      const generation = service.start(spec());
      const upstream = llm.streams[0];
      await upstream.contentApart('a', 'b');
      upstream.content('c', 'd'); // pending: not yet a frame

      // As chat.service's resume does: hold live frames, join the room, replay, release.
      const socket = { readyState: 1, send: jest.fn() };
      const viewer = registry.add(socket as unknown as WebSocket);
      registry.hold(viewer.id, 'm1');
      registry.join(viewer.id, 'chat:c1');
      expect(await service.replay(viewer.id, 'm1', 1)).toBe(true);
      registry.release(viewer.id, 'm1');
      const received = () => socket.send.mock.calls.map(([data]) => JSON.parse(data as string) as Frame);
      // the pending text was sent before the log was read: it is in the replay, not left for later
      expect(received().map((f) => [f.seq, f.content])).toEqual([
        [2, 'b'],
        [3, 'cd'],
      ]);

      await nextTurn(); // the shared flush finds nothing left to send
      upstream.content('e', 'f');
      await nextTurn();
      upstream.finish();
      await generation.done;

      const frames = received();
      const seqs = frames.filter((f) => f.type === 'agent_response').map((f) => f.seq);
      expect(seqs).toEqual([2, 3, 4]);
      const text =
        'a' +
        frames
          .filter((f) => f.type === 'agent_response')
          .map((f) => f.content)
          .join('');
      expect(frames.at(-1)).toEqual(expect.objectContaining({ type: 'agent_response_end', seq: 4, content: 'abcdef' }));
      expect(text).toBe('abcdef');
      expect(pieces().map(([, seq, content]) => [seq, content])).toEqual([
        [1, 'a'],
        [2, 'b'],
        [3, 'cd'],
        [4, 'ef'],
      ]);
    });

    it('find() (the live text a page renders, with its seq) includes the pending text', async () => {
      service.start(spec());
      await llm.streams[0].contentApart('a');
      llm.streams[0].content('b', 'c');
      const live = service.find('m1')!;
      expect([live.content, live.seq]).toEqual(['abc', 2]);
      expect(pieces()).toEqual([
        ['agent_response', 1, 'a'],
        ['agent_response', 2, 'bc'],
      ]);
    });
  });

  describe('running count per user', () => {
    it("counts each owner's running generations and returns to 0 on every end path", async () => {
      const ends: Array<[string, (upstream: FakeStream, messageId: string) => unknown]> = [
        ['complete', (u) => (u.content('a'), u.finish())],
        ['incomplete finish', (u) => (u.content('a'), u.finish(false))],
        ['upstream completes without finish', (u) => u.events.complete()],
        ['error', (u) => u.events.error(new AppError('upstream_auth', 'refused'))],
        ['error after content', (u) => (u.content('a'), u.events.error(new AppError('upstream_interrupted', 'broke')))],
        ['unexpected failure', (u) => u.events.error(new TypeError('boom'))],
        ['stop()', (_u, id) => service.stop(id)],
        ['stop frame of the owner', (_u, id) => stops.stop(id, 'alice')],
      ];
      const generations = ends.map((_, i) => service.start(spec(`a${i}`, { ownerId: 'alice' })));
      const bobs = service.start(spec('b1', { ownerId: 'bob' }));
      expect(service.runningFor('alice')).toBe(ends.length);
      expect(service.runningFor('bob')).toBe(1);
      expect(service.runningFor('carol')).toBe(0);

      for (const [i, [, endIt]] of ends.entries()) {
        await endIt(llm.streams[i], `a${i}`);
        await generations[i].done;
        expect(service.runningFor('alice')).toBe(ends.length - i - 1);
        expect(service.runningFor('bob')).toBe(1);
      }
      // ending again changes nothing
      expect(service.stop('a0')).toBe(false);
      llm.streams.at(-1)!.finish();
      await bobs.done;
      expect(service.runningFor('alice')).toBe(0);
      expect(service.runningFor('bob')).toBe(0);
      expect(service.runningCount).toBe(0);
    });

    it('returns to 0 when the stream fails on subscribe and when storing the end fails', async () => {
      llm.next = throwError(() => new AppError('model_not_configured', 'no key'));
      const failing = service.start(spec('m1'));
      await failing.done;
      expect(service.runningFor('user-1')).toBe(0);

      messages.finish.mockRejectedValue(new Error('disk full'));
      const unstored = service.start(spec('m2'));
      expect(service.runningFor('user-1')).toBe(1);
      llm.streams[0].finish();
      await unstored.done;
      expect(service.runningFor('user-1')).toBe(0);
    });
  });

  it('stores the final message BEFORE publishing agent_response_end', async () => {
    let release!: () => void;
    messages.finish.mockImplementation(async (_id: string, final: FinalMessage) => {
      order.push(`finish:${final.status}`);
      await new Promise<void>((resolve) => (release = resolve));
      order.push('finish:stored');
    });
    const generation = service.start(spec());
    llm.streams[0].content('x');
    llm.streams[0].finish();
    await flush();
    expect(messages.finish).toHaveBeenCalledTimes(1);
    expect(fanout.types()).not.toContain('agent_response_end');
    // a stop while the end is being written changes nothing
    expect(service.stop('m1')).toBe(true);
    release();
    await generation.done;
    expect(order).toEqual(['publish:agent_response_start', 'publish:agent_response', 'finish:complete', 'finish:stored', 'publish:agent_response_end']);
    expect(fanout.frames().at(-1)?.status).toBe('complete');
  });

  it('still announces the end when storing it fails (and logs the failure)', async () => {
    messages.finish.mockRejectedValue(new Error('disk full'));
    const generation = service.start(spec());
    llm.streams[0].content('x');
    llm.streams[0].finish();
    await generation.done;
    expect(fanout.types().at(-1)).toBe('agent_response_end');
    expect(logError).toHaveBeenCalledWith(expect.stringContaining('disk full'));
  });

  describe('with its row still being written (spec.stored)', () => {
    function pendingWrite() {
      let resolve!: () => void;
      let reject!: (error: Error) => void;
      const stored = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
      return { stored, resolve, reject };
    }

    it('asks the model at once, holds every frame until the row is stored, then sends them in order', async () => {
      const write = pendingWrite();
      const generation = service.start(spec('m1', { stored: write.stored }));
      expect(llm.streams[0].subscriptions).toBe(1); // the request is out before the row exists
      await llm.streams[0].reasoningApart('a');
      await llm.streams[0].contentApart('b', 'c');
      expect(fanout.published).toEqual([]);
      write.resolve();
      await flush();
      expect(fanout.frames().map((f) => [f.type, f.seq, f.content])).toEqual([
        ['agent_response_start', undefined, undefined],
        ['agent_reasoning', 1, 'a'],
        ['agent_response', 2, 'b'],
        ['agent_response', 3, 'c'],
      ]);
      await llm.streams[0].contentApart('d'); // later pieces go out as they come
      expect(fanout.frames().at(-1)).toEqual(expect.objectContaining({ seq: 4, content: 'd' }));
      llm.streams[0].finish();
      await generation.done;
      expect(fanout.types().at(-1)).toBe('agent_response_end');
    });

    it('text still waiting for its frame when the row is stored leaves with the held frames, in the same tick', async () => {
      const write = pendingWrite();
      service.start(spec('m1', { stored: write.stored }));
      llm.streams[0].content('first'); // arrived in this turn of the event loop: its frame waits for setImmediate
      write.resolve();
      await Promise.resolve(); // the release (a microtask), no setImmediate yet
      await Promise.resolve();
      expect(fanout.frames().map((f) => [f.type, f.seq, f.content])).toEqual([
        ['agent_response_start', undefined, undefined],
        ['agent_response', 1, 'first'],
      ]);
      await flush(); // and flushPending finds nothing left to send
      expect(fanout.frames()).toHaveLength(2);
    });

    it('an end (here: a stop) before the row is stored is written and sent after it', async () => {
      const write = pendingWrite();
      const generation = service.start(spec('m1', { stored: write.stored }));
      llm.streams[0].content('x');
      expect(service.stop('m1')).toBe(true);
      await flush();
      expect(llm.streams[0].teardowns).toBe(1);
      expect(messages.finish).not.toHaveBeenCalled();
      expect(fanout.published).toEqual([]);
      write.resolve();
      await generation.done;
      expect(order).toEqual(['publish:agent_response_start', 'publish:agent_response', 'finish:stopped', 'publish:agent_response_end']);
      expect(messages.finish).toHaveBeenCalledWith('m1', expect.objectContaining({ content: 'x', seq: 1, status: 'stopped' }));
    });

    it('no snapshot is written before the row exists', async () => {
      jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
      const write = pendingWrite();
      service.start(spec('m1', { stored: write.stored }));
      await llm.streams[0].contentApart('x');
      await jest.advanceTimersByTimeAsync(SNAPSHOT_INTERVAL_MS * 2);
      expect(snapshots()).toEqual([]);
      write.resolve();
      await jest.advanceTimersByTimeAsync(SNAPSHOT_INTERVAL_MS);
      expect(snapshots()).toEqual([['m1', 'x', null, 1]]);
    });

    it('a failed write drops the generation: upstream cancelled, nothing sent or written, the user no longer counted', async () => {
      const write = pendingWrite();
      const generation = service.start(spec('m1', { stored: write.stored }));
      expect(service.runningFor('user-1')).toBe(1);
      llm.streams[0].content('x');
      write.reject(new Error('disk full'));
      await generation.done;
      await flush();
      expect(llm.streams[0].teardowns).toBe(1);
      expect(fanout.published).toEqual([]);
      expect(messages.finish).not.toHaveBeenCalled();
      expect(service.runningFor('user-1')).toBe(0);
      expect(service.find('m1')).toBeUndefined();
      expect(service.stop('m1')).toBe(false);
    });
  });

  describe('snapshots', () => {
    beforeEach(() => jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] }));

    it('writes no row per piece, at most one snapshot per interval, and only when the text changed', async () => {
      const generation = service.start(spec());
      const upstream = llm.streams[0];
      await upstream.contentApart('a', 'b', 'c');
      expect(snapshots()).toEqual([]);

      await jest.advanceTimersByTimeAsync(SNAPSHOT_INTERVAL_MS - 1);
      expect(snapshots()).toEqual([]);
      await jest.advanceTimersByTimeAsync(1);
      expect(snapshots()).toEqual([['m1', 'abc', null, 3]]);

      // nothing new: no write, however long it waits
      await jest.advanceTimersByTimeAsync(5 * SNAPSHOT_INTERVAL_MS);
      expect(snapshots()).toHaveLength(1);

      // a piece every 100 ms for 3 intervals: exactly 3 writes
      for (let i = 0; i < 30; i++) {
        await upstream.reasoningApart('r');
        await jest.advanceTimersByTimeAsync(SNAPSHOT_INTERVAL_MS / 10);
      }
      expect(snapshots()).toHaveLength(4);
      expect(snapshots()[3]).toEqual(['m1', 'abc', 'r'.repeat(30), 33]);

      upstream.content('d');
      upstream.finish();
      await generation.done;
      await jest.advanceTimersByTimeAsync(10 * SNAPSHOT_INTERVAL_MS);
      expect(snapshots()).toHaveLength(4);
      expect(messages.finish).toHaveBeenCalledWith('m1', expect.objectContaining({ content: 'abcd', seq: 34 }));
    });

    it('one batch (one transaction) per interval for every running generation whose text changed', async () => {
      service.start(spec('m1'));
      service.start(spec('m2'));
      service.start(spec('m3'));
      await llm.streams[0].contentApart('a');
      await llm.streams[2].contentApart('c');
      await jest.advanceTimersByTimeAsync(SNAPSHOT_INTERVAL_MS);
      expect(messages.snapshotMany.mock.calls).toEqual([
        [
          [
            { id: 'm1', content: 'a', reasoning: null, seq: 1 },
            { id: 'm3', content: 'c', reasoning: null, seq: 1 },
          ],
        ],
      ]);
    });

    it('a failed batch is written again at the next interval, even without new text', async () => {
      messages.snapshotMany.mockRejectedValueOnce(new Error('locked'));
      service.start(spec('m1'));
      await llm.streams[0].contentApart('a');
      await jest.advanceTimersByTimeAsync(SNAPSHOT_INTERVAL_MS);
      await jest.advanceTimersByTimeAsync(SNAPSHOT_INTERVAL_MS);
      expect(snapshots()).toEqual([
        ['m1', 'a', null, 1],
        ['m1', 'a', null, 1],
      ]);
      await jest.advanceTimersByTimeAsync(SNAPSHOT_INTERVAL_MS);
      expect(snapshots()).toHaveLength(2);
    });

    it('a failed snapshot is logged and the generation goes on', async () => {
      messages.snapshotMany.mockRejectedValueOnce(new Error('locked'));
      const generation = service.start(spec());
      llm.streams[0].content('a');
      await jest.advanceTimersByTimeAsync(SNAPSHOT_INTERVAL_MS);
      expect(logWarn).toHaveBeenCalledWith(expect.stringContaining('locked'));
      llm.streams[0].content('b');
      await jest.advanceTimersByTimeAsync(SNAPSHOT_INTERVAL_MS);
      expect(snapshots()).toEqual([
        ['m1', 'a', null, 1],
        ['m1', 'ab', null, 2],
      ]);
      llm.streams[0].finish();
      await generation.done;
      expect(fanout.frames().at(-1)?.content).toBe('ab');
    });
  });

  describe('replay', () => {
    const connect = () => {
      const socket = { readyState: 1, send: jest.fn() };
      const { id } = registry.add(socket as unknown as WebSocket);
      const frames = () => socket.send.mock.calls.map(([data]) => JSON.parse(data as string) as Frame);
      return { id, frames };
    };

    it('sends a running generation exactly the frames after afterSeq', async () => {
      service.start(spec());
      await llm.streams[0].reasoningApart('r');
      await llm.streams[0].contentApart('a', 'b', 'c');
      const viewer = connect();
      expect(await service.replay(viewer.id, 'm1', 2)).toBe(true);
      expect(viewer.frames()).toEqual([
        { type: 'agent_response', chat_id: 'c1', message_id: 'm1', id: 'req-1', seq: 3, content: 'b' },
        { type: 'agent_response', chat_id: 'c1', message_id: 'm1', id: 'req-1', seq: 4, content: 'c' },
      ]);
    });

    it('after the end: the missing frames then agent_response_end; at the last seq only the end', async () => {
      const generation = service.start(spec());
      await llm.streams[0].contentApart('a', 'b', 'c');
      llm.streams[0].emit({ type: 'usage', usage: USAGE });
      llm.streams[0].finish();
      await generation.done;

      const viewer = connect();
      expect(await service.replay(viewer.id, 'm1', 1)).toBe(true);
      expect(viewer.frames().map((f) => [f.type, f.seq, f.content])).toEqual([
        ['agent_response', 2, 'b'],
        ['agent_response', 3, 'c'],
        ['agent_response_end', 3, 'abc'],
      ]);
      expect(viewer.frames()[2]).toEqual(expect.objectContaining({ status: 'complete', usage: USAGE, id: 'req-1' }));

      const caughtUp = connect();
      expect(await service.replay(caughtUp.id, 'm1', 3)).toBe(true);
      expect(caughtUp.frames().map((f) => f.type)).toEqual(['agent_response_end']);
    });

    it('replays reasoning and content pieces that alternate, each with its own text, as they were sent', async () => {
      service.start(spec());
      await llm.streams[0].reasoningApart('think ', 'more');
      await llm.streams[0].contentApart('an');
      await llm.streams[0].reasoningApart(' again');
      await llm.streams[0].contentApart('swer', ' ✓😀');
      const live = fanout.frames().filter((f) => f.seq !== undefined);
      const viewer = connect();
      expect(await service.replay(viewer.id, 'm1', 0)).toBe(true);
      expect(viewer.frames()).toEqual(live.map((f) => ({ ...f })));
      expect(viewer.frames().map((f) => [f.type, f.seq, f.content])).toEqual([
        ['agent_reasoning', 1, 'think '],
        ['agent_reasoning', 2, 'more'],
        ['agent_response', 3, 'an'],
        ['agent_reasoning', 4, ' again'],
        ['agent_response', 5, 'swer'],
        ['agent_response', 6, ' ✓😀'],
      ]);
      const late = connect();
      expect(await service.replay(late.id, 'm1', 4)).toBe(true);
      expect(late.frames().map((f) => f.content)).toEqual(['swer', ' ✓😀']);
    });

    it('answers false (and sends nothing) for a message it does not hold', async () => {
      const viewer = connect();
      expect(await service.replay(viewer.id, 'unknown', 0)).toBe(false);
      expect(viewer.frames()).toEqual([]);
    });
  });

  describe('shutdown', () => {
    beforeEach(() => jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] }));

    it('refuses new generations, waits up to DRAIN_TIMEOUT_MS, then ends the rest as interrupted', async () => {
      const finishing = service.start(spec('m1'));
      const hanging = service.start(spec('m2'));
      llm.streams[1].content('partial');
      expect(service.runningFor('user-1')).toBe(2);

      let drained = false;
      const drain = service.beforeApplicationShutdown().then(() => (drained = true));

      expect(service.isAccepting).toBe(false);
      const refused = caught(() => service.start(spec('m3')));
      expect(refused).toBeInstanceOf(AppError);
      expect((refused as AppError).code).toBe('shutting_down');
      expect(llm.streams).toHaveLength(2);
      expect(fanout.frames('m3')).toEqual([]);

      llm.streams[0].content('done');
      llm.streams[0].finish();
      await finishing.done;

      await jest.advanceTimersByTimeAsync(DRAIN_MS - 1);
      expect(drained).toBe(false);
      expect(fanout.types('m2')).toEqual(['agent_response_start', 'agent_response']);
      expect(llm.streams[1].teardowns).toBe(0);

      await jest.advanceTimersByTimeAsync(1);
      await drain;
      await hanging.done;
      expect(drained).toBe(true);
      expect(llm.streams[1].teardowns).toBe(1);
      expect(fanout.frames('m1').at(-1)).toEqual(expect.objectContaining({ type: 'agent_response_end', status: 'complete', content: 'done' }));
      expect(fanout.frames('m2').at(-1)).toEqual(expect.objectContaining({ type: 'agent_response_end', status: 'interrupted', content: 'partial', seq: 1 }));
      expect(messages.finish.mock.calls.map(([id, final]) => [id, final.status])).toEqual([
        ['m1', 'complete'],
        ['m2', 'interrupted'],
      ]);
      expect(service.runningCount).toBe(0);
      expect(service.runningFor('user-1')).toBe(0);
    });

    it('returns as soon as every running generation has finished, without waiting for the timeout', async () => {
      const generation = service.start(spec());
      let drained = false;
      const drain = service.beforeApplicationShutdown().then(() => (drained = true));
      await flush();
      expect(drained).toBe(false);
      llm.streams[0].content('ok');
      llm.streams[0].finish();
      await generation.done;
      await drain;
      expect(drained).toBe(true);
      expect(jest.getTimerCount()).toBe(0); // no timer per ended answer
      expect(fanout.frames().at(-1)?.status).toBe('complete');
    });

    it('with nothing running it returns at once and still refuses new work', async () => {
      await service.beforeApplicationShutdown();
      expect((caught(() => service.start(spec())) as AppError).code).toBe('shutting_down');
      expect(fanout.published).toEqual([]);
    });
  });

  it('onModuleInit (run when the app starts) marks messages left streaming by a previous run as interrupted', async () => {
    expect(messages.interruptAllStreaming).toHaveBeenCalledTimes(1);
    expect(logWarn).not.toHaveBeenCalled();
    messages.interruptAllStreaming.mockResolvedValue(3);
    await service.onModuleInit();
    expect(messages.interruptAllStreaming).toHaveBeenCalledTimes(2);
    expect(logWarn).toHaveBeenCalledWith(expect.stringContaining('3 message(s)'));
  });
});

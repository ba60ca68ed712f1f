import { Logger } from '@nestjs/common';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Observable, Subscription } from 'rxjs';
import { AppError } from '../common/app-error';
import { type Dialect, FakeDeepSeek, OPENAI_FIELDS, type WireFormat } from '../../test/fakes/deepseek.fake';
import { DeepSeekProvider } from './deepseek.provider';
import { type LlmEvent, type LlmRequest, LlmSettings } from './llm.provider';

interface Outcome {
  events: LlmEvent[];
  error?: unknown;
  completed: boolean;
}

/** Subscribes and collects everything until the Observable completes or errors. */
function collect(obs: Observable<LlmEvent>, timeoutMs = 10_000): Promise<Outcome> {
  return new Promise<Outcome>((resolve, reject) => {
    const events: LlmEvent[] = [];
    const timer = setTimeout(() => {
      sub.unsubscribe();
      reject(new Error(`stream did not end within ${timeoutMs} ms; got ${JSON.stringify(events)}`));
    }, timeoutMs);
    const sub = obs.subscribe({
      next: (e) => events.push(e),
      error: (error) => {
        clearTimeout(timer);
        resolve({ events, error, completed: false });
      },
      complete: () => {
        clearTimeout(timer);
        resolve({ events, completed: true });
      },
    });
  });
}

function codeOf(err: unknown): string | undefined {
  return err instanceof AppError ? err.code : undefined;
}

/** A bare SSE server for shapes the fake does not script. `handler` gets the response after the body was read. */
async function rawServer(
  handler: (res: http.ServerResponse, req: http.IncomingMessage, body: string) => void,
): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => handler(res, req, Buffer.concat(parts).toString('utf8')));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const chunk = (delta: object, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: finish }], usage: null })}\n\n`;

const hello: LlmRequest = { messages: [{ role: 'user', content: 'hello' }] };

/** The usage event of a stream whose server reported none. */
const ESTIMATED = { type: 'usage', usage: expect.objectContaining({ estimated: true }) };

describe('DeepSeekProvider (against the fake DeepSeek server)', () => {
  let fake: FakeDeepSeek;

  // The provider logs failures (on purpose); keep the test output readable.
  beforeAll(() => Logger.overrideLogger(false));
  afterAll(() => Logger.overrideLogger(['log', 'error', 'warn', 'debug', 'verbose']));

  const settingsFor = (over: Partial<LlmSettings> = {}): LlmSettings =>
    Object.assign(new LlmSettings(), {
      apiKey: 'test-key',
      baseUrl: fake.baseUrl,
      model: 'deepseek-v4-flash',
      timeoutMs: 5_000,
      maxRetries: 2,
      retryBaseMs: 5,
      ...over,
    });
  const provider = (over: Partial<LlmSettings> = {}) => new DeepSeekProvider(settingsFor(over));

  beforeEach(async () => {
    fake = await FakeDeepSeek.start();
  });
  afterEach(async () => {
    await fake.close();
  });

  it('streams reasoning, content, usage and finish in order, then completes', async () => {
    fake.enqueue({ kind: 'stream', reasoning: ['Let me ', 'think.'], content: ['Hel', 'lo', '!'] });
    const out = await collect(provider().stream(hello));

    expect(out.error).toBeUndefined();
    expect(out.completed).toBe(true);
    const usage = out.events.find((e) => e.type === 'usage');
    expect(out.events).toEqual([
      { type: 'reasoning', text: 'Let me ' },
      { type: 'reasoning', text: 'think.' },
      { type: 'content', text: 'Hel' },
      { type: 'content', text: 'lo' },
      { type: 'content', text: '!' },
      usage,
      { type: 'finish', reason: 'stop', complete: true },
    ]);
    expect(usage).toEqual({
      type: 'usage',
      usage: {
        prompt_tokens: expect.any(Number),
        completion_tokens: expect.any(Number),
        total_tokens: expect.any(Number),
        reasoning_tokens: expect.any(Number),
      },
    });
    if (usage?.type === 'usage') {
      expect(usage.usage.total_tokens).toBe(usage.usage.prompt_tokens + usage.usage.completion_tokens);
      expect(usage.usage.reasoning_tokens).toBeGreaterThan(0);
    }
    expect(fake.requests).toHaveLength(1);
  });

  it('answers with the built-in echo scenario (thinking on by default)', async () => {
    const out = await collect(provider().stream({ messages: [{ role: 'user', content: 'abcdefgh' }] }));
    expect(out.completed).toBe(true);
    const reasoning = out.events.filter((e) => e.type === 'reasoning').map((e) => (e as { text: string }).text);
    const content = out.events.filter((e) => e.type === 'content').map((e) => (e as { text: string }).text);
    expect(reasoning.join('')).toBe('Let me think.');
    expect(content.join('')).toBe('Echo: abcdefgh');
    expect(out.events.map((e) => e.type).slice(-2)).toEqual(['usage', 'finish']);
  });

  it('sends the model, stream_options.include_usage, temperature and max_tokens', async () => {
    await collect(provider().stream({ ...hello, model: 'deepseek-v4-pro', temperature: 0.3, maxTokens: 77 }));
    expect(fake.requests).toHaveLength(1);
    const req = fake.requests[0];
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/chat/completions');
    expect(req.headers.authorization).toBe('Bearer test-key');
    expect(req.body).toMatchObject({
      model: 'deepseek-v4-pro',
      messages: [{ role: 'user', content: 'hello' }],
      stream: true,
      stream_options: { include_usage: true },
      temperature: 0.3,
      max_tokens: 77,
    });
    expect(req.body).not.toHaveProperty('thinking');
  });

  it('uses the default model when the request names none', async () => {
    await collect(provider({ model: 'deepseek-v4-pro' }).stream(hello));
    expect(fake.requests[0].body.model).toBe('deepseek-v4-pro');
    expect(fake.requests[0].body).not.toHaveProperty('temperature');
    expect(fake.requests[0].body).not.toHaveProperty('max_tokens');
  });

  it('sends thinking {type: disabled} / {type: enabled}', async () => {
    const p = provider();
    const off = await collect(p.stream({ ...hello, thinking: false }));
    const on = await collect(p.stream({ ...hello, thinking: true }));
    expect(fake.requests.map((r) => r.body.thinking)).toEqual([{ type: 'disabled' }, { type: 'enabled' }]);
    // The fake's default honours the switch: no reasoning when disabled.
    expect(off.events.some((e) => e.type === 'reasoning')).toBe(false);
    expect(on.events.some((e) => e.type === 'reasoning')).toBe(true);
  });

  it('finish carries the reason; insufficient_system_resource is not complete', async () => {
    fake.enqueue(
      { kind: 'stream', content: ['a'], finishReason: 'length' },
      { kind: 'stream', content: ['b'], finishReason: 'insufficient_system_resource', usage: false },
    );
    const p = provider();
    const length = await collect(p.stream(hello));
    const cut = await collect(p.stream(hello));
    expect(length.events.at(-1)).toEqual({ type: 'finish', reason: 'length', complete: true });
    expect(cut.events).toEqual([{ type: 'content', text: 'b' }, ESTIMATED, { type: 'finish', reason: 'insufficient_system_resource', complete: false }]);
  });

  it('is cold: each subscription makes its own request', async () => {
    const obs = provider().stream(hello);
    expect(fake.requests).toHaveLength(0);
    await collect(obs);
    await collect(obs);
    expect(fake.requests).toHaveLength(2);
  });

  it('401 → upstream_auth without retry, upstream text kept', async () => {
    fake.setDefault({ kind: 'error', status: 401 });
    const out = await collect(provider().stream(hello));
    expect(out.events).toEqual([]);
    expect(codeOf(out.error)).toBe('upstream_auth');
    expect((out.error as Error).message).toContain('Authentication Fails');
    expect(fake.requests).toHaveLength(1);
  });

  it('a wrong key is refused by the fake → upstream_auth, and the key is not in the message', async () => {
    const out = await collect(provider({ apiKey: 'sk-wrongwrongwrong' }).stream(hello));
    expect(codeOf(out.error)).toBe('upstream_auth');
    expect((out.error as Error).message).not.toContain('sk-wrongwrongwrong');
    expect(fake.requests).toHaveLength(1);
  });

  it('402 → upstream_quota without retry', async () => {
    fake.setDefault({ kind: 'error', status: 402 });
    const out = await collect(provider().stream(hello));
    expect(codeOf(out.error)).toBe('upstream_quota');
    expect((out.error as Error).message).toContain('Insufficient Balance');
    expect(fake.requests).toHaveLength(1);
  });

  it.each([400, 404, 422])('%i → upstream_bad_request without retry', async (status) => {
    fake.setDefault({ kind: 'error', status });
    const out = await collect(provider().stream(hello));
    expect(codeOf(out.error)).toBe('upstream_bad_request');
    expect(fake.requests).toHaveLength(1);
  });

  it('429 twice then success → succeeds after 3 requests', async () => {
    fake.enqueue({ kind: 'error', status: 429 }, { kind: 'error', status: 429 }, { kind: 'stream', content: ['ok'] });
    const out = await collect(provider({ maxRetries: 2 }).stream(hello));
    expect(out.error).toBeUndefined();
    expect(out.events.filter((e) => e.type !== 'usage')).toEqual([
      { type: 'content', text: 'ok' },
      { type: 'finish', reason: 'stop', complete: true },
    ]);
    expect(fake.requests).toHaveLength(3);
  });

  it('429 forever → upstream_rate_limited after maxRetries + 1 requests', async () => {
    fake.setDefault({ kind: 'error', status: 429 });
    const out = await collect(provider({ maxRetries: 2 }).stream(hello));
    expect(codeOf(out.error)).toBe('upstream_rate_limited');
    expect(fake.requests).toHaveLength(3);
  });

  it('503 forever → upstream_unavailable after maxRetries + 1 requests', async () => {
    fake.setDefault({ kind: 'error', status: 503 });
    const out = await collect(provider({ maxRetries: 3 }).stream(hello));
    expect(out.events).toEqual([]);
    expect(codeOf(out.error)).toBe('upstream_unavailable');
    expect(fake.requests).toHaveLength(4);
  });

  it('500 / 502 / 504 are retried too', async () => {
    fake.enqueue({ kind: 'error', status: 500 }, { kind: 'error', status: 502 }, { kind: 'error', status: 504 }, { kind: 'stream', content: ['fine'] });
    const out = await collect(provider({ maxRetries: 3 }).stream(hello));
    expect(out.completed).toBe(true);
    expect(fake.requests).toHaveLength(4);
  });

  it("'refuse' → upstream_unavailable after retries", async () => {
    fake.setDefault({ kind: 'refuse' });
    const out = await collect(provider({ maxRetries: 1 }).stream(hello));
    expect(codeOf(out.error)).toBe('upstream_unavailable');
    expect(fake.requests).toHaveLength(2);
  });

  it("'refuse' once then success → succeeds", async () => {
    fake.enqueue({ kind: 'refuse' }, { kind: 'stream', content: ['back'] });
    const out = await collect(provider({ maxRetries: 1 }).stream(hello));
    expect(out.completed).toBe(true);
    expect(out.events[0]).toEqual({ type: 'content', text: 'back' });
    expect(fake.requests).toHaveLength(2);
  });

  it('nothing listening → upstream_unavailable', async () => {
    const settings = settingsFor({ maxRetries: 1 });
    await fake.close();
    const out = await collect(new DeepSeekProvider(settings).stream(hello));
    expect(codeOf(out.error)).toBe('upstream_unavailable');
  });

  it('cut mid-stream → the pieces, then upstream_interrupted, and no retry', async () => {
    fake.enqueue({ kind: 'cut', reasoning: ['hmm'], content: ['par', 'tial'] });
    const out = await collect(provider({ maxRetries: 3 }).stream(hello));
    expect(out.events).toEqual([
      { type: 'reasoning', text: 'hmm' },
      { type: 'content', text: 'par' },
      { type: 'content', text: 'tial' },
    ]);
    expect(codeOf(out.error)).toBe('upstream_interrupted');
    expect(fake.requests).toHaveLength(1);
  });

  it('cut before any piece is retried like a connection error', async () => {
    fake.enqueue({ kind: 'cut', content: [] }, { kind: 'stream', content: ['second'] });
    const out = await collect(provider({ maxRetries: 1 }).stream(hello));
    expect(out.completed).toBe(true);
    expect(out.events[0]).toEqual({ type: 'content', text: 'second' });
    expect(fake.requests).toHaveLength(2);
  });

  it('a stream that ends without finish_reason still finishes (reason null)', async () => {
    // A clean end of the body without finish_reason nor [DONE]: a tolerant server's behaviour.
    const server = await rawServer((res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.end(chunk({ content: 'only' }));
    });
    try {
      const out = await collect(provider({ baseUrl: server.url }).stream(hello));
      expect(out.events).toEqual([{ type: 'content', text: 'only' }, ESTIMATED, { type: 'finish', reason: null, complete: true }]);
      expect(out.completed).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('accepts `reasoning` (Ollama / OpenRouter) like `reasoning_content`', async () => {
    const server = await rawServer((res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.end(chunk({ reasoning: 'think' }) + chunk({ content: 'say' }, 'stop') + 'data: [DONE]\n\n');
    });
    try {
      const out = await collect(provider({ baseUrl: server.url }).stream(hello));
      expect(out.events).toEqual([
        { type: 'reasoning', text: 'think' },
        { type: 'content', text: 'say' },
        ESTIMATED,
        { type: 'finish', reason: 'stop', complete: true },
      ]);
    } finally {
      await server.close();
    }
  });

  it('a break after finish_reason (usage / [DONE] lost) still finishes', async () => {
    const server = await rawServer((res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write(chunk({ content: 'done' }, 'stop'), () => setTimeout(() => res.socket?.destroy(), 20));
    });
    try {
      const out = await collect(provider({ baseUrl: server.url }).stream(hello));
      expect(out.events).toEqual([{ type: 'content', text: 'done' }, ESTIMATED, { type: 'finish', reason: 'stop', complete: true }]);
    } finally {
      await server.close();
    }
  });

  it('hang with keep-alives every 20 ms and timeoutMs 300 → upstream_timeout (keep-alives are not progress)', async () => {
    fake.setDefault({ kind: 'hang', keepAliveEveryMs: 20 });
    const started = Date.now();
    const out = await collect(provider({ timeoutMs: 300, maxRetries: 2 }).stream(hello));
    const elapsed = Date.now() - started;
    expect(out.events).toEqual([]);
    expect(codeOf(out.error)).toBe('upstream_timeout');
    expect(elapsed).toBeGreaterThanOrEqual(280);
    expect(elapsed).toBeLessThan(2_000);
    // Not retried, and the request was really cancelled.
    expect(fake.requests).toHaveLength(1);
    await fake.waitForAborted(1, 2_000);
  });

  it('the no-progress timer is re-armed by every chunk (a slow but steady stream succeeds)', async () => {
    fake.enqueue({ kind: 'stream', content: ['a', 'b', 'c', 'd', 'e', 'f'], delayMs: 100 });
    const out = await collect(provider({ timeoutMs: 300 }).stream(hello));
    expect(out.error).toBeUndefined();
    expect(out.events.filter((e) => e.type === 'content')).toHaveLength(6);
  });

  it('a stall after the role chunk (before any piece) → upstream_timeout, not retried', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    fake.enqueue({ kind: 'stream', content: ['x'], gate });
    const out = await collect(provider({ timeoutMs: 200, maxRetries: 2 }).stream(hello));
    release();
    expect(out.events).toEqual([]);
    expect(codeOf(out.error)).toBe('upstream_timeout');
    expect(fake.requests).toHaveLength(1);
  });

  it('a stall after the first piece → the piece, then upstream_timeout', async () => {
    let closedByClient = false;
    const server = await rawServer((res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write(chunk({ role: 'assistant', content: '' }) + chunk({ content: 'a' }));
      const ka = setInterval(() => res.write(': keep-alive\n\n'), 20);
      res.on('close', () => {
        clearInterval(ka);
        closedByClient = true;
      });
    });
    try {
      const out = await collect(provider({ baseUrl: server.url, timeoutMs: 200, maxRetries: 2 }).stream(hello));
      expect(out.events).toEqual([{ type: 'content', text: 'a' }]);
      expect(codeOf(out.error)).toBe('upstream_timeout');
      await new Promise((r) => setTimeout(r, 50));
      expect(closedByClient).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('unsubscribing mid-stream aborts the HTTP request (the fake sees the disconnect)', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    fake.enqueue({ kind: 'stream', content: ['one', 'two'], gate });
    const events: LlmEvent[] = [];
    let sub: Subscription | undefined;
    let ended = false;
    await new Promise<void>((resolve) => {
      sub = provider()
        .stream(hello)
        .subscribe({
          next: (e) => events.push(e),
          error: () => (ended = true),
          complete: () => (ended = true),
        });
      // Wait until the fake is holding the response open (role chunk sent, pieces gated), and the
      // provider has read what came, so that only the unsubscribe can end the request.
      const poll = setInterval(() => {
        if (fake.openStreams > 0) {
          clearInterval(poll);
          setTimeout(resolve, 150);
        }
      }, 5);
    });
    expect(fake.aborted).toBe(0);
    sub!.unsubscribe();
    await fake.waitForAborted(1, 2_000);
    release();
    await new Promise((r) => setTimeout(r, 50));
    expect(fake.aborted).toBe(1);
    expect(ended).toBe(false);
    expect(events).toEqual([]);
  });

  it('unsubscribing after the first pieces aborts too and emits nothing more', async () => {
    // Two pieces, then the server holds the stream open: only the unsubscribe can end it.
    let serverSawClose!: () => void;
    const closed = new Promise<void>((r) => (serverSawClose = r));
    const server = await rawServer((res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write(chunk({ role: 'assistant', content: '' }) + chunk({ content: 'a' }) + chunk({ content: 'b' }));
      res.on('close', () => serverSawClose());
    });
    try {
      const events: LlmEvent[] = [];
      await new Promise<void>((resolve) => {
        const sub: Subscription = provider({ baseUrl: server.url })
          .stream(hello)
          .subscribe((e) => {
            events.push(e);
            if (events.length === 2) {
              sub.unsubscribe();
              resolve();
            }
          });
      });
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        closed,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('server never saw the disconnect')), 2_000);
        }),
      ]).finally(() => clearTimeout(timer));
      await new Promise((r) => setTimeout(r, 50));
      expect(events).toEqual([
        { type: 'content', text: 'a' },
        { type: 'content', text: 'b' },
      ]);
    } finally {
      await server.close();
    }
  });

  it('no API key → model_not_configured at once, and no HTTP request', async () => {
    for (const apiKey of [undefined, '', '   ']) {
      const p = provider({ apiKey });
      expect(p.isConfigured()).toBe(false);
      const out = await collect(p.stream(hello));
      expect(out.events).toEqual([]);
      expect(codeOf(out.error)).toBe('model_not_configured');
    }
    expect(fake.requests).toHaveLength(0);
    expect(provider().isConfigured()).toBe(true);
  });

  it('defaultModel is the configured model', () => {
    expect(provider({ model: 'deepseek-v4-pro' }).defaultModel).toBe('deepseek-v4-pro');
  });

  it('listModels: the fake list with the default model first, deduplicated', async () => {
    const ids = await provider({ model: 'deepseek-v4-pro' }).listModels();
    expect(ids).toEqual(['deepseek-v4-pro', 'deepseek-v4-flash']);
  });

  it('listModels: a default missing from the list is still first', async () => {
    expect(await provider({ model: 'local-model' }).listModels()).toEqual(['local-model', 'deepseek-v4-flash', 'deepseek-v4-pro']);
  });

  it('listModels: cached for a while (one upstream call for several reads)', async () => {
    const p = provider();
    const first = await p.listModels();
    await fake.close();
    expect(await p.listModels()).toEqual(first);
  });

  it('listModels: [default] when the fake is closed, or on a wrong key, or without a key', async () => {
    expect(await provider({ apiKey: 'wrong' }).listModels()).toEqual(['deepseek-v4-flash']);
    expect(await provider({ apiKey: undefined }).listModels()).toEqual(['deepseek-v4-flash']);
    const settings = settingsFor();
    await fake.close();
    expect(await new DeepSeekProvider(settings).listModels()).toEqual(['deepseek-v4-flash']);
  });
});

describe('FakeDeepSeek wire format', () => {
  let fake: FakeDeepSeek;
  beforeEach(async () => {
    fake = await FakeDeepSeek.start();
  });
  afterEach(async () => {
    await fake.close();
  });

  const post = (body: object, key = 'test-key', path = '/chat/completions') =>
    fetch(`${fake.baseUrl}${path}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}` },
      body: JSON.stringify(body),
    });

  it('streams SSE chunks exactly as DeepSeek does, with keep-alive comments and [DONE]', async () => {
    fake.enqueue({ kind: 'stream', reasoning: ['r1'], content: ['c1', 'c2'], keepAlives: 2, keepAliveMs: 1 });
    const res = await post(
      {
        model: 'deepseek-v4-pro',
        messages: [{ role: 'user', content: 'hi' }],
        stream: true,
        stream_options: { include_usage: true },
      },
      'test-key',
      '/v1/chat/completions',
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const text = await res.text();
    const blocks = text.split('\n\n').filter(Boolean);
    expect(blocks.slice(0, 2)).toEqual([': keep-alive', ': keep-alive']);
    expect(blocks.at(-1)).toBe('data: [DONE]');
    const chunks = blocks.slice(2, -1).map((b) => {
      expect(b.startsWith('data: ')).toBe(true);
      return JSON.parse(b.slice(6));
    });
    for (const c of chunks) {
      expect(c).toMatchObject({
        id: expect.any(String),
        object: 'chat.completion.chunk',
        created: expect.any(Number),
        model: 'deepseek-v4-pro',
        system_fingerprint: expect.any(String),
      });
    }
    expect(chunks.map((c) => c.choices[0]?.delta ?? null)).toEqual([
      { role: 'assistant', content: null, reasoning_content: '' },
      { content: null, reasoning_content: 'r1' },
      { content: 'c1', reasoning_content: null },
      { content: 'c2', reasoning_content: null },
      null,
    ]);
    expect(chunks.map((c) => c.choices[0]?.finish_reason ?? null)).toEqual([null, null, null, 'stop', null]);
    expect(chunks.slice(0, -1).every((c) => c.usage === null && c.choices[0].logprobs === null)).toBe(true);
    const last = chunks.at(-1);
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({
      prompt_tokens: expect.any(Number),
      completion_tokens: expect.any(Number),
      total_tokens: expect.any(Number),
      completion_tokens_details: { reasoning_tokens: expect.any(Number) },
      prompt_cache_hit_tokens: expect.any(Number),
      prompt_cache_miss_tokens: expect.any(Number),
    });
  });

  it('omits the usage chunk unless stream_options.include_usage, and reasoning when thinking is off', async () => {
    const res = await post({
      model: 'deepseek-v4-flash',
      messages: [{ role: 'user', content: 'hey' }],
      stream: true,
      thinking: { type: 'disabled' },
    });
    const text = await res.text();
    const chunks = text
      .split('\n\n')
      .filter((b) => b.startsWith('data: {'))
      .map((b) => JSON.parse(b.slice(6)));
    expect(chunks[0].choices[0].delta).toEqual({ role: 'assistant', content: '' });
    expect(chunks.every((c) => c.choices.length === 1 && c.usage === null)).toBe(true);
    expect(chunks.map((c) => c.choices[0].delta.content).join('')).toBe('Echo: hey');
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
  });

  it('answers errors with DeepSeek error bodies, and 401 for another key', async () => {
    fake.enqueue({ kind: 'error', status: 503, message: 'busy' });
    const busy = await post({ model: 'x', messages: [], stream: true });
    expect(busy.status).toBe(503);
    expect(await busy.json()).toEqual({ error: { message: 'busy', type: expect.any(String), param: null, code: expect.anything() } });
    const denied = await post({ model: 'x', messages: [], stream: true }, 'other');
    expect(denied.status).toBe(401);
    expect((await denied.json()).error).toMatchObject({ type: 'authentication_error', param: null });
    expect(fake.requests).toHaveLength(2);
  });

  it('lists models', async () => {
    for (const path of ['/models', '/v1/models']) {
      const res = await fetch(`${fake.baseUrl}${path}`, { headers: { Authorization: 'Bearer test-key' } });
      expect(await res.json()).toEqual({
        object: 'list',
        data: [
          { id: 'deepseek-v4-flash', object: 'model', owned_by: 'deepseek' },
          { id: 'deepseek-v4-pro', object: 'model', owned_by: 'deepseek' },
        ],
      });
    }
  });

  it('close() ends hanging responses', async () => {
    fake.setDefault({ kind: 'hang' });
    const res = await post({ model: 'x', messages: [], stream: true });
    expect(res.status).toBe(200);
    expect(fake.openStreams).toBe(1);
    const body = res.text().catch((e) => e);
    await fake.close();
    await body;
    expect(fake.openStreams).toBe(0);
    expect(fake.aborted).toBe(0);
  });
});

// -------------------------------------------------------------------------------------------------
// Other OpenAI-compatible servers: the same core expectations against every dialect and wire format.

const REASONING = ['Let me ', 'think: is 2 < 3', '? Yes.'];
const CONTENT = ['Hello', ', <b>wörld</b> ', '✓ 🎉', '!'];

interface DialectCase {
  name: string;
  dialect: Dialect;
  /** A model name as that kind of server has them. */
  model: string;
  tagSplit?: number;
  /** The finish reason the provider reports. */
  finish: string | null;
  /** The server sends no usage: the provider estimates it. */
  estimated: boolean;
  /** `thinking` goes out with LLM_THINKING_FIELD=auto. */
  thinkingSent: boolean;
}

const DIALECTS: DialectCase[] = [
  { name: 'deepseek', dialect: 'deepseek', model: 'deepseek-v4-flash', finish: 'stop', estimated: false, thinkingSent: true },
  { name: 'ollama (reasoning)', dialect: 'ollama', model: 'qwen3:8b', finish: 'stop', estimated: false, thinkingSent: false },
  { name: 'think-tags', dialect: 'think-tags', model: 'DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf', finish: 'stop', estimated: false, thinkingSent: false },
  { name: 'think-tags, tags split across chunks', dialect: 'think-tags', model: 'qwq-32b', tagSplit: 3, finish: 'stop', estimated: false, thinkingSent: false },
  { name: 'strict-openai', dialect: 'strict-openai', model: 'gpt-oss-20b', finish: 'stop', estimated: false, thinkingSent: false },
  { name: 'minimal', dialect: 'minimal', model: 'local-model', finish: null, estimated: true, thinkingSent: false },
];

const WIRES: Array<[string, WireFormat]> = [
  ['LF, one event per write', {}],
  ['CRLF line endings', { crlf: true }],
  ['`data:` without a space', { noSpace: true }],
  ['the whole response in one write', { batch: true }],
  ['two events per write', { batch: 2 }],
  ['each event split across writes (16 bytes)', { splitBytes: 16 }],
  ['CRLF + no space + split (3 bytes)', { crlf: true, noSpace: true, splitBytes: 3 }],
];

const texts = (events: LlmEvent[], type: 'reasoning' | 'content') => events.filter((e) => e.type === type).map((e) => (e as { text: string }).text);

describe.each(DIALECTS)('DeepSeekProvider against the $name dialect', (c) => {
  let fake: FakeDeepSeek | undefined;
  beforeAll(() => Logger.overrideLogger(false));
  afterAll(() => Logger.overrideLogger(['log', 'error', 'warn', 'debug', 'verbose']));
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  const start = async (wire: WireFormat = {}) => {
    fake = await FakeDeepSeek.start({ dialect: c.dialect, wire, models: [c.model, 'other-model:latest'] });
    return new DeepSeekProvider(
      Object.assign(new LlmSettings(), {
        apiKey: 'test-key',
        baseUrl: fake.baseUrl,
        model: c.model,
        timeoutMs: 5_000,
        maxRetries: 0,
        retryBaseMs: 5,
      }),
    );
  };

  it.each(WIRES)('%s: reasoning apart, content exact, usage, finish', async (_wireName, wire) => {
    const p = await start(wire);
    fake!.enqueue({ kind: 'stream', reasoning: REASONING, content: CONTENT, tagSplit: c.tagSplit });
    const out = await collect(p.stream({ messages: [{ role: 'user', content: 'Say hello' }], thinking: true }));

    expect(out.error).toBeUndefined();
    expect(out.completed).toBe(true);
    // Reasoning first, then the answer, then one usage and the finish.
    const kinds = out.events.map((e) => e.type).join(',');
    expect(kinds).toMatch(/^(reasoning,)+(content,)+usage,finish$/);
    expect(texts(out.events, 'reasoning').join('')).toBe(REASONING.join(''));
    expect(texts(out.events, 'content').join('')).toBe(CONTENT.join(''));
    for (const piece of texts(out.events, 'content')) {
      expect(piece).not.toMatch(/think|Let me|<\/?th/);
    }
    const usage = out.events.at(-2) as Extract<LlmEvent, { type: 'usage' }>;
    expect(usage.usage.estimated === true).toBe(c.estimated);
    expect(usage.usage.completion_tokens).toBeGreaterThan(0);
    expect(usage.usage.total_tokens).toBe(usage.usage.prompt_tokens + usage.usage.completion_tokens);
    expect(out.events.at(-1)).toEqual({ type: 'finish', reason: c.finish, complete: true });

    expect(fake!.requests).toHaveLength(1);
    const body = fake!.requests[0].body;
    expect(body).toMatchObject({ model: c.model, stream: true, stream_options: { include_usage: true } });
    expect('thinking' in body).toBe(c.thinkingSent);
  });

  it('an answer without thinking is all content', async () => {
    const p = await start();
    fake!.enqueue({ kind: 'stream', content: ['<b>No</b> ', 'thinking <think>here</think>'], tagSplit: c.tagSplit });
    const out = await collect(p.stream({ messages: [{ role: 'user', content: 'hi' }] }));
    expect(out.completed).toBe(true);
    expect(texts(out.events, 'reasoning')).toEqual([]);
    expect(texts(out.events, 'content').join('')).toBe('<b>No</b> thinking <think>here</think>');
  });

  it('a stream cut mid-answer keeps the pieces apart, then upstream_interrupted', async () => {
    const p = await start();
    fake!.enqueue({ kind: 'cut', reasoning: ['Hmm.'], content: ['par', 'tial'], tagSplit: c.tagSplit });
    const out = await collect(p.stream({ messages: [{ role: 'user', content: 'hi' }] }));
    expect(texts(out.events, 'reasoning').join('')).toBe('Hmm.');
    expect(texts(out.events, 'content').join('')).toBe('partial');
    expect(codeOf(out.error)).toBe('upstream_interrupted');
  });

  it('listModels: the server names as they are, the configured model first', async () => {
    const p = await start();
    const ids = await p.listModels();
    expect(ids).toEqual(c.dialect === 'minimal' ? [c.model] : [c.model, 'other-model:latest']);
  });
});

describe('DeepSeekProvider: inline <think> tags stream as they arrive', () => {
  beforeAll(() => Logger.overrideLogger(false));
  afterAll(() => Logger.overrideLogger(['log', 'error', 'warn', 'debug', 'verbose']));

  const settings = (baseUrl: string) =>
    Object.assign(new LlmSettings(), { apiKey: 'k', baseUrl, model: 'r1-distill', timeoutMs: 5_000, maxRetries: 0, retryBaseMs: 5 });

  it('reasoning goes out before the closing tag arrives; only a possible tag is held back', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const server = await rawServer((res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write(
        chunk({ role: 'assistant', content: '' }) + chunk({ content: '<thi' }) + chunk({ content: 'nk>\nStep one, step' }) + chunk({ content: ' two </th' }),
      );
      void gate.then(() => {
        res.end(chunk({ content: 'ink>\n\nThe answer.' }, 'stop') + 'data: [DONE]\n\n');
      });
    });
    try {
      const events: LlmEvent[] = [];
      const done = new Promise<void>((resolve, reject) => {
        new DeepSeekProvider(settings(server.url)).stream(hello).subscribe({
          next: (e) => {
            events.push(e);
            // Everything but the held-back tail arrived while the server still holds the rest.
            if (texts(events, 'reasoning').join('') === 'Step one, step two') release();
          },
          error: reject,
          complete: resolve,
        });
      });
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        done,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`reasoning was buffered: ${JSON.stringify(events)}`)), 3_000);
        }),
      ]).finally(() => clearTimeout(timer));
      expect(texts(events, 'reasoning').join('')).toBe('Step one, step two');
      expect(texts(events, 'content')).toEqual(['The answer.']);
      expect(events.at(-1)).toEqual({ type: 'finish', reason: 'stop', complete: true });
    } finally {
      release();
      await server.close();
    }
  });

  it('an answer that ends inside the think block is reasoning only', async () => {
    const server = await rawServer((res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.end(chunk({ content: '<think>\nstill thinking' }) + chunk({ content: ' when cut off' }, 'length') + 'data: [DONE]\n\n');
    });
    try {
      const out = await collect(new DeepSeekProvider(settings(server.url)).stream(hello));
      expect(texts(out.events, 'reasoning').join('')).toBe('still thinking when cut off');
      expect(texts(out.events, 'content')).toEqual([]);
      expect(out.events.at(-1)).toEqual({ type: 'finish', reason: 'length', complete: true });
    } finally {
      await server.close();
    }
  });

  it('what was held back as a possible tag is content when the answer ends there', async () => {
    const server = await rawServer((res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.end(chunk({ content: ' <' }) + chunk({ content: 'th' }, 'stop') + 'data: [DONE]\n\n');
    });
    try {
      const out = await collect(new DeepSeekProvider(settings(server.url)).stream(hello));
      expect(texts(out.events, 'content').join('')).toBe(' <th');
      expect(out.events.map((e) => e.type)).toEqual(['content', 'usage', 'finish']);
    } finally {
      await server.close();
    }
  });

  it('`reasoning_content` and `reasoning` both present: the text is taken once', async () => {
    const server = await rawServer((res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.end(
        chunk({ reasoning_content: 'a', reasoning: 'a' }) +
          chunk({ reasoning_content: '', reasoning: 'b' }) +
          chunk({ content: 'c' }, 'stop') +
          'data: [DONE]\n\n',
      );
    });
    try {
      const out = await collect(new DeepSeekProvider(settings(server.url)).stream(hello));
      expect(texts(out.events, 'reasoning')).toEqual(['a', 'b']);
      expect(texts(out.events, 'content')).toEqual(['c']);
    } finally {
      await server.close();
    }
  });
});

describe('DeepSeekProvider: only what the server understands', () => {
  let fake: FakeDeepSeek | undefined;
  beforeAll(() => Logger.overrideLogger(false));
  afterAll(() => Logger.overrideLogger(['log', 'error', 'warn', 'debug', 'verbose']));
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  const make = (baseUrl: string, over: Partial<LlmSettings> = {}) =>
    new DeepSeekProvider(
      Object.assign(new LlmSettings(), {
        apiKey: 'test-key',
        baseUrl,
        model: 'gpt-oss-20b',
        timeoutMs: 5_000,
        maxRetries: 2,
        retryBaseMs: 5,
        ...over,
      }),
    );
  const thinkingOn: LlmRequest = { ...hello, thinking: true };

  it('LLM_THINKING_FIELD=none: a DeepSeek model name still gets no `thinking`', async () => {
    fake = await FakeDeepSeek.start();
    await collect(make(fake.baseUrl, { model: 'deepseek-v4-pro', thinkingField: 'none' }).stream(thinkingOn));
    expect(fake.requests[0].body).not.toHaveProperty('thinking');
  });

  it('LLM_THINKING_FIELD=deepseek: any model gets it; auto: only DeepSeek model names', async () => {
    fake = await FakeDeepSeek.start({ dialect: 'ollama' });
    await collect(make(fake.baseUrl, { model: 'qwen3:8b', thinkingField: 'deepseek' }).stream({ ...hello, thinking: false }));
    await collect(make(fake.baseUrl, { model: 'qwen3:8b', thinkingField: 'auto' }).stream(thinkingOn));
    await collect(make(fake.baseUrl, { model: 'deepseek-r1:8b' }).stream(thinkingOn));
    await collect(make(fake.baseUrl, { model: 'deepseek-v4-flash' }).stream(thinkingOn));
    expect(fake.requests.map((r) => r.body.thinking)).toEqual([{ type: 'disabled' }, undefined, undefined, { type: 'enabled' }]);
  });

  it('strict server + LLM_THINKING_FIELD=deepseek: 400 naming `thinking` → retried once without it, then never sent again', async () => {
    fake = await FakeDeepSeek.start({ dialect: 'strict-openai' });
    fake.enqueue({ kind: 'stream', reasoning: ['r'], content: ['first'] }, { kind: 'stream', reasoning: ['r'], content: ['second'] });
    const p = make(fake.baseUrl, { thinkingField: 'deepseek' });
    const first = await collect(p.stream(thinkingOn));
    expect(first.error).toBeUndefined();
    expect(texts(first.events, 'content')).toEqual(['first']);
    expect(first.events.find((e) => e.type === 'usage')).toEqual({ type: 'usage', usage: expect.not.objectContaining({ estimated: true }) });
    expect(fake.requests.map((r) => r.body.thinking)).toEqual([{ type: 'enabled' }, undefined]);

    const second = await collect(p.stream(thinkingOn));
    expect(texts(second.events, 'content')).toEqual(['second']);
    expect(fake.requests).toHaveLength(3);
    expect(fake.requests[2].body).not.toHaveProperty('thinking');
    // The remembered field is only left out; everything else still goes.
    expect(fake.requests[2].body).toMatchObject({ stream_options: { include_usage: true } });
  });

  it('each refused field is dropped once, in the order the server names them', async () => {
    fake = await FakeDeepSeek.start({
      dialect: 'strict-openai',
      knownFields: OPENAI_FIELDS.filter((f) => f !== 'reasoning_effort' && f !== 'stream_options'),
    });
    const p = make(fake.baseUrl, { thinkingField: 'deepseek', reasoningEffort: 'high' });
    const out = await collect(p.stream(thinkingOn));
    expect(out.error).toBeUndefined();
    expect(fake.requests.map((r) => Object.keys(r.body).filter((k) => ['thinking', 'reasoning_effort', 'stream_options'].includes(k)))).toEqual([
      ['stream_options', 'thinking', 'reasoning_effort'],
      ['thinking', 'reasoning_effort'],
      ['reasoning_effort'],
      [],
    ]);
    // No usage chunk without stream_options: estimated.
    expect(out.events.find((e) => e.type === 'usage')).toEqual(ESTIMATED);
    await collect(p.stream(thinkingOn));
    expect(fake.requests).toHaveLength(5);
    expect(Object.keys(fake.requests[4].body).sort()).toEqual(['messages', 'model', 'stream']);
  });

  it('a server that keeps refusing the same field: retried only once, then upstream_bad_request', async () => {
    const bodies: any[] = [];
    const server = await rawServer((res, _req, body) => {
      bodies.push(JSON.parse(body));
      res.writeHead(400, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({ error: { message: 'Unrecognized request argument supplied: thinking', type: 'invalid_request_error', param: null, code: null } }),
      );
    });
    try {
      const out = await collect(make(server.url, { thinkingField: 'deepseek' }).stream(thinkingOn));
      expect(codeOf(out.error)).toBe('upstream_bad_request');
      expect((out.error as Error).message).toContain('Unrecognized request argument supplied: thinking');
      expect(bodies).toHaveLength(2);
      expect(bodies[1]).not.toHaveProperty('thinking');
    } finally {
      await server.close();
    }
  });

  it('FastAPI / pydantic 422 `extra fields not permitted` with loc [body, thinking] → dropped and retried', async () => {
    const bodies: any[] = [];
    const server = await rawServer((res, _req, raw) => {
      const body = JSON.parse(raw);
      bodies.push(body);
      if ('thinking' in body) {
        res.writeHead(422, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ detail: [{ loc: ['body', 'thinking'], msg: 'extra fields not permitted', type: 'value_error.extra' }] }));
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.end(chunk({ content: 'fine' }, 'stop') + 'data: [DONE]\n\n');
    });
    try {
      const p = make(server.url, { thinkingField: 'deepseek' });
      const out = await collect(p.stream(thinkingOn));
      expect(out.error).toBeUndefined();
      expect(texts(out.events, 'content')).toEqual(['fine']);
      expect(bodies.map((b) => 'thinking' in b)).toEqual([true, false]);
      await collect(p.stream(thinkingOn));
      expect(bodies.map((b) => 'thinking' in b)).toEqual([true, false, false]);
    } finally {
      await server.close();
    }
  });

  it('a refusal naming no field: retried without all optional fields, remembered only once that worked', async () => {
    const bodies: any[] = [];
    let refuseAlways = true;
    const server = await rawServer((res, _req, raw) => {
      const body = JSON.parse(raw);
      bodies.push(body);
      if (refuseAlways || 'thinking' in body) {
        res.writeHead(400, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ object: 'error', message: 'Unrecognized request argument supplied', type: 'BadRequestError', param: null, code: 400 }));
        return;
      }
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.end(chunk({ content: 'ok' }, 'stop') + 'data: [DONE]\n\n');
    });
    const optional = (b: any) => ['thinking', 'stream_options'].filter((k) => k in b);
    try {
      const p = make(server.url, { thinkingField: 'deepseek' });
      // The server refuses everything: the drop did not help, so nothing is remembered.
      const failed = await collect(p.stream(thinkingOn));
      expect(codeOf(failed.error)).toBe('upstream_bad_request');
      // vLLM's top-level error shape: the server's words reach the message.
      expect((failed.error as Error).message).toContain('Unrecognized request argument supplied');
      expect(bodies.map(optional)).toEqual([['thinking', 'stream_options'], []]);
      refuseAlways = false;
      const ok = await collect(p.stream(thinkingOn));
      expect(texts(ok.events, 'content')).toEqual(['ok']);
      await collect(p.stream(thinkingOn));
      expect(bodies.map(optional)).toEqual([['thinking', 'stream_options'], [], ['thinking', 'stream_options'], [], []]);
    } finally {
      await server.close();
    }
  });

  it('a 200 that is not an answer (a login page) after a refusal naming no field: the drop is not remembered', async () => {
    const bodies: any[] = [];
    let portal = true;
    const server = await rawServer((res, _req, raw) => {
      const body = JSON.parse(raw);
      bodies.push(body);
      if ('thinking' in body) {
        res.writeHead(400, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ object: 'error', message: 'Unrecognized request argument supplied', type: 'BadRequestError', param: null, code: 400 }));
      } else if (portal) {
        res.writeHead(200, { 'Content-Type': 'text/html' });
        res.end('<html><head><title>Sign in</title></head></html>');
      } else {
        res.writeHead(200, { 'Content-Type': 'text/event-stream' });
        res.end(chunk({ content: 'ok' }, 'stop') + 'data: [DONE]\n\n');
      }
    });
    const optional = (b: any) => ['thinking', 'stream_options'].filter((k) => k in b);
    try {
      const p = make(server.url, { thinkingField: 'deepseek', maxRetries: 0 });
      const failed = await collect(p.stream(thinkingOn));
      expect(codeOf(failed.error)).toBe('upstream_bad_response');
      portal = false;
      await collect(p.stream(thinkingOn));
      // The login page did not show the fields were the trouble: the next turn sends them again.
      expect(bodies.map(optional)).toEqual([['thinking', 'stream_options'], [], ['thinking', 'stream_options'], []]);
    } finally {
      await server.close();
    }
  });

  it('a 400 about something else (a bad temperature) is not retried', async () => {
    const bodies: any[] = [];
    const server = await rawServer((res, _req, raw) => {
      bodies.push(JSON.parse(raw));
      res.writeHead(400, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({
          error: {
            message: "Unsupported value: 'temperature' does not support 5 with this model.",
            type: 'invalid_request_error',
            param: 'temperature',
            code: 'unsupported_value',
          },
        }),
      );
    });
    try {
      const out = await collect(make(server.url, { thinkingField: 'deepseek' }).stream({ ...thinkingOn, temperature: 5 }));
      expect(codeOf(out.error)).toBe('upstream_bad_request');
      expect(bodies).toHaveLength(1);
    } finally {
      await server.close();
    }
  });

  it('plain-text error bodies keep their words', async () => {
    const server = await rawServer((res) => {
      res.writeHead(400, { 'Content-Type': 'text/plain' });
      res.end('model "nope" not found, try pulling it first');
    });
    try {
      const out = await collect(make(server.url).stream(hello));
      expect(codeOf(out.error)).toBe('upstream_bad_request');
      expect((out.error as Error).message).toContain('model "nope" not found');
    } finally {
      await server.close();
    }
  });

  it('LLM_REASONING_EFFORT goes out unless the request turns thinking off', async () => {
    fake = await FakeDeepSeek.start();
    const p = make(fake.baseUrl, { model: 'deepseek-v4-pro', reasoningEffort: 'max' });
    await collect(p.stream(hello));
    await collect(p.stream({ ...hello, thinking: false }));
    await collect(p.stream({ ...hello, reasoningEffort: 'high' }));
    expect(fake.requests.map((r) => r.body.reasoning_effort)).toEqual(['max', undefined, 'high']);
    const plain = make(fake.baseUrl, { model: 'deepseek-v4-pro' });
    await collect(plain.stream(thinkingOn));
    expect(fake.requests[3].body).not.toHaveProperty('reasoning_effort');
  });

  it('no /models (404): the configured model only, and the server is not asked again at once', async () => {
    let modelCalls = 0;
    const server = await rawServer((res, req) => {
      if (req.url?.endsWith('/models')) modelCalls++;
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('404 page not found');
    });
    try {
      const p = make(server.url, { model: 'my-local-model' });
      expect(await p.listModels()).toEqual(['my-local-model']);
      expect(await p.listModels()).toEqual(['my-local-model']);
      expect(modelCalls).toBe(1);
    } finally {
      await server.close();
    }
  });

  it('estimated usage: about four characters a token', async () => {
    fake = await FakeDeepSeek.start({ dialect: 'minimal' });
    fake.enqueue({ kind: 'stream', reasoning: ['12345678'], content: ['abcd', 'efghi'] });
    const out = await collect(
      make(fake.baseUrl).stream({
        messages: [
          { role: 'system', content: 'abcd' },
          { role: 'user', content: 'abcdefghi' },
        ],
      }),
    );
    expect(out.events.find((e) => e.type === 'usage')).toEqual({
      type: 'usage',
      usage: { prompt_tokens: 4, completion_tokens: 2 + 3, total_tokens: 9, reasoning_tokens: 2, estimated: true },
    });
  });
});

describe('FakeDeepSeek dialects and wire switches (what the provider tests rely on)', () => {
  let fake: FakeDeepSeek | undefined;
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  const streamBody = (extra: object = {}) => ({
    model: 'm',
    messages: [{ role: 'user', content: 'hi' }],
    stream: true,
    stream_options: { include_usage: true },
    ...extra,
  });

  /** The raw response, and how many network reads it took. */
  async function raw(body: object): Promise<{ status: number; text: string; reads: number }> {
    const res = await fetch(`${fake!.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer test-key' },
      body: JSON.stringify(body),
    });
    const reader = res.body!.getReader();
    const parts: Uint8Array[] = [];
    let reads = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      reads++;
      parts.push(value);
    }
    return { status: res.status, text: Buffer.concat(parts).toString('utf8'), reads };
  }

  const dataOf = (text: string) =>
    text
      .split(/\r?\n\r?\n/)
      .filter((b) => b.startsWith('data:'))
      .map((b) => b.replace(/^data: ?/, ''));

  it('ollama: `reasoning` deltas, no reasoning_content, usage chunk, [DONE]', async () => {
    fake = await FakeDeepSeek.start({ dialect: 'ollama' });
    fake.enqueue({ kind: 'stream', reasoning: ['r1'], content: ['c1'] });
    const { text } = await raw(streamBody());
    const data = dataOf(text);
    expect(data.at(-1)).toBe('[DONE]');
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    expect(chunks.map((c) => c.choices[0]?.delta ?? null)).toEqual([
      { role: 'assistant', content: '', reasoning: 'r1' },
      { role: 'assistant', content: 'c1' },
      null,
    ]);
    expect(text).not.toContain('reasoning_content');
    expect(chunks.at(-1).usage).toMatchObject({ total_tokens: expect.any(Number) });
  });

  it('think-tags: the thinking inline in content; tagSplit cuts the tags across chunks; usage on the finish chunk', async () => {
    fake = await FakeDeepSeek.start({ dialect: 'think-tags' });
    fake.enqueue({ kind: 'stream', reasoning: ['r1'], content: ['c1'], tagSplit: 3 });
    const chunks = dataOf((await raw(streamBody())).text)
      .slice(0, -1)
      .map((d) => JSON.parse(d));
    const pieces = chunks.map((c) => c.choices[0]?.delta?.content).filter((p) => typeof p === 'string');
    expect(pieces.join('')).toBe('<think>\nr1\n</think>\n\nc1');
    expect(pieces.some((p: string) => p.includes('<think>') || p.includes('</think>'))).toBe(false);
    expect(JSON.stringify(chunks.map((c) => c.choices))).not.toMatch(/reasoning/);
    const last = chunks.at(-1);
    expect(last.choices[0]).toMatchObject({ delta: {}, finish_reason: 'stop' });
    expect(last.usage).toMatchObject({ total_tokens: expect.any(Number) });
  });

  it('strict-openai: 400 naming the unknown field, the scenario stays queued', async () => {
    fake = await FakeDeepSeek.start({ dialect: 'strict-openai' });
    fake.enqueue({ kind: 'stream', content: ['ok'] });
    const refused = await raw(streamBody({ thinking: { type: 'enabled' } }));
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.text)).toEqual({
      error: { message: 'Unrecognized request argument supplied: thinking', type: 'invalid_request_error', param: null, code: null },
    });
    const ok = await raw(streamBody({ reasoning_effort: 'high' }));
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('"content":"ok"');
    expect(fake.requests).toHaveLength(2);
  });

  it('minimal: bare chunks, no usage, no finish_reason, no [DONE]; 404 on /models', async () => {
    fake = await FakeDeepSeek.start({ dialect: 'minimal' });
    fake.enqueue({ kind: 'stream', reasoning: ['r1'], content: ['c1', 'c2'] });
    const { text } = await raw(streamBody());
    expect(text).not.toMatch(/DONE|finish_reason|usage|"id"/);
    expect(dataOf(text).map((d) => JSON.parse(d))).toEqual([
      { choices: [{ delta: { reasoning_content: 'r1' } }] },
      { choices: [{ delta: { content: 'c1' } }] },
      { choices: [{ delta: { content: 'c2' } }] },
    ]);
    const models = await fetch(`${fake.baseUrl}/models`, { headers: { Authorization: 'Bearer test-key' } });
    expect(models.status).toBe(404);
  });

  it('wire: CRLF line endings and `data:` without a space', async () => {
    fake = await FakeDeepSeek.start({ wire: { crlf: true, noSpace: true } });
    fake.enqueue({ kind: 'stream', content: ['c1'], keepAlives: 1, keepAliveMs: 1 });
    const { text } = await raw(streamBody());
    expect(text.replace(/\r\n/g, '')).not.toContain('\n');
    expect(text.startsWith(': keep-alive\r\n\r\ndata:{')).toBe(true);
    expect(text.endsWith('data:[DONE]\r\n\r\n')).toBe(true);
    expect(text).not.toContain('data: ');
  });

  it('wire: events split across writes arrive over more reads than there are events; batched in fewer', async () => {
    fake = await FakeDeepSeek.start();
    fake.enqueue({ kind: 'stream', content: ['a', 'b', 'c'], wire: { splitBytes: 16 } });
    const split = await raw(streamBody());
    const events = dataOf(split.text).length;
    expect(events).toBe(6); // role, 3 content, usage, [DONE]
    expect(split.reads).toBeGreaterThan(events);
    fake.enqueue({ kind: 'stream', content: ['a', 'b', 'c'], wire: { batch: true } });
    const batched = await raw(streamBody());
    expect(batched.text.replace(/"(id|created)":("[^"]*"|\d+)/g, '')).toBe(split.text.replace(/"(id|created)":("[^"]*"|\d+)/g, ''));
    expect(batched.reads).toBeLessThan(events);
  });
});

// -------------------------------------------------------------------------------------------------
// The SSE path (node:http + eventsource-parser): wire shapes and failures the fake does not script.

describe('DeepSeekProvider over node:http (wire shapes and failures)', () => {
  beforeAll(() => Logger.overrideLogger(false));
  afterAll(() => Logger.overrideLogger(['log', 'error', 'warn', 'debug', 'verbose']));

  const provider = (baseUrl: string, over: Partial<LlmSettings> = {}) =>
    new DeepSeekProvider(
      Object.assign(new LlmSettings(), {
        apiKey: 'test-key',
        baseUrl,
        model: 'deepseek-v4-flash',
        timeoutMs: 5_000,
        maxRetries: 0,
        retryBaseMs: 5,
        ...over,
      }),
    );
  const sse = (res: http.ServerResponse) => res.writeHead(200, { 'Content-Type': 'text/event-stream' });

  it('sends the JSON body with content-type, accept: text/event-stream, the key and a content-length', async () => {
    let seen: { headers: http.IncomingHttpHeaders; body: string; url?: string; method?: string } | undefined;
    const server = await rawServer((res, req, body) => {
      seen = { headers: req.headers, body, url: req.url, method: req.method };
      sse(res);
      res.end(chunk({ content: 'ok' }, 'stop') + 'data: [DONE]\n\n');
    });
    try {
      const out = await collect(provider(`${server.url}/v1/`).stream({ messages: [{ role: 'user', content: 'hé ✓' }] }));
      expect(out.completed).toBe(true);
      expect(seen?.method).toBe('POST');
      expect(seen?.url).toBe('/v1/chat/completions');
      expect(seen?.headers['content-type']).toBe('application/json');
      expect(seen?.headers.accept).toBe('text/event-stream');
      expect(seen?.headers.authorization).toBe('Bearer test-key');
      expect(Number(seen?.headers['content-length'])).toBe(Buffer.byteLength(seen!.body));
      expect(JSON.parse(seen!.body)).toMatchObject({ messages: [{ role: 'user', content: 'hé ✓' }], stream: true });
    } finally {
      await server.close();
    }
  });

  it('turns one after another reuse one kept-alive connection', async () => {
    const sockets = new Set<unknown>();
    const server = await rawServer((res, req) => {
      sockets.add(req.socket);
      sse(res);
      res.end(chunk({ content: 'ok' }, 'stop') + 'data: [DONE]\n\n');
    });
    try {
      const p = provider(server.url);
      for (let i = 0; i < 3; i++) {
        expect((await collect(p.stream(hello))).completed).toBe(true);
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(sockets.size).toBe(1);
    } finally {
      await server.close();
    }
  });

  it('a kept-alive socket the server drops as the next request arrives: sent again at once on a new connection, no retry budget used', async () => {
    const sockets: unknown[] = [];
    let requests = 0;
    const server = await rawServer((res, req) => {
      requests += 1;
      if (!sockets.includes(req.socket)) sockets.push(req.socket);
      // The second request arrives on the first connection: drop it unanswered, as a server that
      // closed an idle connection does.
      if (requests === 2) {
        req.socket.destroy();
        return;
      }
      sse(res);
      res.end(chunk({ content: `answer ${requests}` }, 'stop') + 'data: [DONE]\n\n');
    });
    try {
      const p = provider(server.url, { maxRetries: 0 });
      expect(texts((await collect(p.stream(hello))).events, 'content')).toEqual(['answer 1']);
      await new Promise((r) => setTimeout(r, 10));
      const second = await collect(p.stream(hello));
      expect(second.error).toBeUndefined();
      expect(texts(second.events, 'content')).toEqual(['answer 3']);
      expect(sockets).toHaveLength(2);
    } finally {
      await server.close();
    }
  });

  it('a fresh connection refused is not sent again (maxRetries 0 → upstream_unavailable)', async () => {
    const server = await rawServer((res, req) => req.socket.destroy());
    try {
      const out = await collect(provider(server.url, { maxRetries: 0 }).stream(hello));
      expect(out.error).toMatchObject({ code: 'upstream_unavailable' });
    } finally {
      await server.close();
    }
  });

  it('a body cut at every byte (CRLF, no space, multi-byte characters) streams the same answer', async () => {
    const fake = await FakeDeepSeek.start({ wire: { crlf: true, noSpace: true, splitBytes: 1, splitPauseMs: 0 } });
    try {
      fake.enqueue({ kind: 'stream', reasoning: ['Hmm ✓'], content: ['Grüße ', '🎉', '!'] });
      const out = await collect(provider(fake.baseUrl).stream({ ...hello, thinking: true }));
      expect(out.completed).toBe(true);
      expect(texts(out.events, 'reasoning').join('')).toBe('Hmm ✓');
      expect(texts(out.events, 'content').join('')).toBe('Grüße 🎉!');
      expect(out.events.map((e) => e.type).slice(-2)).toEqual(['usage', 'finish']);
      expect(out.events.at(-2)).not.toEqual(ESTIMATED);
    } finally {
      await fake.close();
    }
  });

  it('multi-line data, CR line endings and events of several fields', async () => {
    const server = await rawServer((res) => {
      sse(res);
      const split = chunk({ content: 'two lines' }).replace('"choices":', '"choices":\ndata: ').replace(/\n\n$/, '');
      res.end(('event: message\nid: 1\n' + split + '\n\n' + chunk({ content: '!' }, 'stop') + 'data: [DONE]\n\n').replace(/\n/g, '\r'));
    });
    try {
      const out = await collect(provider(server.url).stream(hello));
      expect(out.events).toEqual([
        { type: 'content', text: 'two lines' },
        { type: 'content', text: '!' },
        ESTIMATED,
        { type: 'finish', reason: 'stop', complete: true },
      ]);
    } finally {
      await server.close();
    }
  });

  it('comments of every spelling and data-less events are not progress: only they → upstream_timeout', async () => {
    let closedByClient = false;
    const server = await rawServer((res) => {
      sse(res);
      const shapes = [': keep-alive\n\n', ':\n\n', ':ping\r\n\r\n', 'event: ping\n\n', 'data:\n\n', 'id: 3\nretry: 5\n\n'];
      let i = 0;
      const ka = setInterval(() => res.write(shapes[i++ % shapes.length]), 15);
      res.on('close', () => {
        clearInterval(ka);
        closedByClient = true;
      });
    });
    try {
      const started = Date.now();
      const out = await collect(provider(server.url, { timeoutMs: 250, maxRetries: 2 }).stream(hello));
      expect(Date.now() - started).toBeGreaterThanOrEqual(230);
      expect(out.events).toEqual([]);
      expect(codeOf(out.error)).toBe('upstream_timeout');
      await new Promise((r) => setTimeout(r, 50));
      expect(closedByClient).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('no answer at all (headers never come) → upstream_timeout, and the request is dropped', async () => {
    let closedByClient = false;
    const server = await rawServer((res) => res.on('close', () => (closedByClient = true)));
    try {
      const out = await collect(provider(server.url, { timeoutMs: 200, maxRetries: 2 }).stream(hello));
      expect(codeOf(out.error)).toBe('upstream_timeout');
      await new Promise((r) => setTimeout(r, 50));
      expect(closedByClient).toBe(true);
    } finally {
      await server.close();
    }
  });

  it("an `error` event before any piece → upstream_unavailable with the server's words, retried", async () => {
    let requests = 0;
    const server = await rawServer((res) => {
      requests++;
      sse(res);
      res.write(chunk({ role: 'assistant', content: '' }));
      res.end('event: error\ndata: {"error":{"message":"model overloaded","type":"server_error","code":null}}\n\n');
    });
    try {
      const out = await collect(provider(server.url, { maxRetries: 1 }).stream(hello));
      expect(out.events).toEqual([]);
      expect(codeOf(out.error)).toBe('upstream_unavailable');
      expect((out.error as Error).message).toContain('model overloaded');
      expect(requests).toBe(2);
    } finally {
      await server.close();
    }
  });

  it('an `error` event mid-answer → the pieces, then upstream_interrupted; the request is dropped, no retry', async () => {
    let requests = 0;
    let closedByClient = false;
    const server = await rawServer((res) => {
      requests++;
      sse(res);
      res.write(chunk({ content: 'par' }) + 'data: {"error":{"message":"boom"}}\n\n' + chunk({ content: 'never' }));
      res.on('close', () => (closedByClient = true));
    });
    try {
      const out = await collect(provider(server.url, { maxRetries: 2 }).stream(hello));
      expect(out.events).toEqual([{ type: 'content', text: 'par' }]);
      expect(codeOf(out.error)).toBe('upstream_interrupted');
      expect(requests).toBe(1);
      await new Promise((r) => setTimeout(r, 50));
      expect(closedByClient).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('a data event that is not JSON is skipped; with nothing else → upstream_bad_response, not an empty answer', async () => {
    const server = await rawServer((res) => {
      sse(res);
      res.end('data: {"choices": [oops\n\n');
    });
    try {
      const out = await collect(provider(server.url, { maxRetries: 2 }).stream(hello));
      expect(out.events).toEqual([]);
      expect(codeOf(out.error)).toBe('upstream_bad_response');
      expect((out.error as Error).message).toContain('1 not JSON');
    } finally {
      await server.close();
    }
  });

  it('[DONE] ends the answer even when the server keeps the response open after it', async () => {
    let closedByClient = false;
    const server = await rawServer((res) => {
      sse(res);
      res.write(chunk({ content: 'done' }, 'stop') + 'data: [DONE]\n\n');
      res.on('close', () => (closedByClient = true));
    });
    try {
      const started = Date.now();
      const out = await collect(provider(server.url, { timeoutMs: 200 }).stream(hello));
      expect(Date.now() - started).toBeLessThan(150);
      expect(out.events).toEqual([{ type: 'content', text: 'done' }, ESTIMATED, { type: 'finish', reason: 'stop', complete: true }]);
      // The socket is not kept forever for the rest of that body.
      await new Promise((r) => setTimeout(r, 400));
      expect(closedByClient).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('429 with retry-after-ms: the wait is at least what the server asked', async () => {
    let requests = 0;
    const server = await rawServer((res) => {
      if (++requests === 1) {
        res.writeHead(429, { 'Content-Type': 'application/json', 'retry-after-ms': '300' });
        res.end(JSON.stringify({ error: { message: 'slow down', type: 'rate_limit_error', code: null } }));
        return;
      }
      sse(res);
      res.end(chunk({ content: 'ok' }, 'stop') + 'data: [DONE]\n\n');
    });
    try {
      const started = Date.now();
      const out = await collect(provider(server.url, { maxRetries: 1, retryBaseMs: 1 }).stream(hello));
      expect(out.completed).toBe(true);
      expect(requests).toBe(2);
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    } finally {
      await server.close();
    }
  });

  it('a redirect is an error, not an empty answer', async () => {
    const server = await rawServer((res) => {
      res.writeHead(307, { Location: '/elsewhere' });
      res.end();
    });
    try {
      const out = await collect(provider(server.url).stream(hello));
      expect(out.completed).toBe(false);
      expect(out.events).toEqual([]);
      expect(out.error).toBeInstanceOf(AppError);
    } finally {
      await server.close();
    }
  });

  it('socket hang up mid-answer (no chunked terminator) → the pieces, then upstream_interrupted', async () => {
    const server = await rawServer((res) => {
      sse(res);
      res.write(chunk({ content: 'a' }), () => setTimeout(() => res.socket?.destroy(), 20));
    });
    try {
      const out = await collect(provider(server.url, { maxRetries: 2 }).stream(hello));
      expect(out.events).toEqual([{ type: 'content', text: 'a' }]);
      expect(codeOf(out.error)).toBe('upstream_interrupted');
    } finally {
      await server.close();
    }
  });

  it('connection reset before any byte of the answer → upstream_unavailable after retries', async () => {
    let requests = 0;
    const server = await rawServer((res) => {
      requests++;
      res.socket?.destroy();
    });
    try {
      const out = await collect(provider(server.url, { maxRetries: 1 }).stream(hello));
      expect(codeOf(out.error)).toBe('upstream_unavailable');
      expect((out.error as Error).message).toContain('Could not connect');
      expect(requests).toBe(2);
    } finally {
      await server.close();
    }
  });
});

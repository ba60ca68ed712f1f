/**
 * A byte-level edge server: one real HTTP server on loopback answering each model request with the
 * exact bytes of a case (issue 17's table: bad 2xx answers, in-stream errors, odd event streams,
 * error pages). Every stream case is played twice: in one write, and one byte per write (every
 * byte boundary is a read boundary, multi-byte characters and CRLFs cut too). Each turn must end
 * with the right events, and the server must see every request finished or dropped.
 */
import { Logger } from '@nestjs/common';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as zlib from 'node:zlib';
import type { Observable } from 'rxjs';
import type { AppError } from '../src/common/app-error';
import { DeepSeekProvider } from '../src/llm/deepseek.provider';
import { type LlmEvent, LlmSettings } from '../src/llm/llm.provider';
import { MAX_EVENT_CHARS } from '../src/llm/sse-client';
import { type RunningApp, startApp, tempDatabaseUrl } from './support/app';
import { WsTestClient } from './support/ws-client';

interface Answer {
  status?: number;
  headers?: Record<string, string>;
  body: string | Buffer;
  /** One byte per write. */
  bytewise?: boolean;
}

/** Answers each request with the next scripted answer (the last one repeats). */
class EdgeServer {
  private readonly server = http.createServer((req, res) => this.answer(req, res));
  private script: Answer[] = [];
  requests = 0;
  /** Requests whose response has not closed yet. */
  open = 0;
  private idleWaiters: Array<() => void> = [];

  static async start(): Promise<EdgeServer> {
    const edge = new EdgeServer();
    await new Promise<void>((resolve) => edge.server.listen(0, '127.0.0.1', () => resolve()));
    return edge;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  play(...answers: Answer[]): void {
    this.script = answers;
    this.requests = 0;
  }

  /** Resolves once no request is in flight: each was answered to its end or dropped by the client. */
  idle(): Promise<void> {
    if (this.open === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private answer(req: http.IncomingMessage, res: http.ServerResponse): void {
    const answer = this.script[Math.min(this.requests, this.script.length - 1)];
    this.requests++;
    this.open++;
    res.on('close', () => {
      this.open--;
      if (this.open === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    });
    req.resume();
    req.on('end', () => void this.send(res, answer));
  }

  private async send(res: http.ServerResponse, answer: Answer): Promise<void> {
    res.writeHead(answer.status ?? 200, answer.headers ?? {});
    const bytes = Buffer.isBuffer(answer.body) ? answer.body : Buffer.from(answer.body, 'utf8');
    if (!answer.bytewise) {
      res.end(bytes);
      return;
    }
    for (let i = 0; i < bytes.length && !res.destroyed; i++) {
      await new Promise<void>((resolve) => res.write(bytes.subarray(i, i + 1), () => resolve()));
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    res.end();
  }
}

const SSE = { 'Content-Type': 'text/event-stream' };
const JSON_TYPE = { 'Content-Type': 'application/json' };
const chunk = (delta: object, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
const usageChunk = `data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } })}\n\n`;
const DONE = 'data: [DONE]\n\n';

interface Outcome {
  events: LlmEvent[];
  error?: AppError;
}

function collect(obs: Observable<LlmEvent>): Promise<Outcome> {
  const events: LlmEvent[] = [];
  return new Promise((resolve) =>
    obs.subscribe({
      next: (e) => events.push(e),
      error: (error: AppError) => resolve({ events, error }),
      complete: () => resolve({ events }),
    }),
  );
}

const text = (out: Outcome, type: 'content' | 'reasoning') =>
  out.events
    .filter((e) => e.type === type)
    .map((e) => (e as { text: string }).text)
    .join('');

describe('model answers of every shape, from a byte-level edge server', () => {
  let edge: EdgeServer;
  beforeAll(async () => {
    Logger.overrideLogger(false);
    edge = await EdgeServer.start();
  });
  afterAll(async () => {
    Logger.overrideLogger(['log', 'error', 'warn', 'debug', 'verbose']);
    await edge.close();
  });

  const provider = (over: Partial<LlmSettings> = {}) =>
    new DeepSeekProvider(
      Object.assign(new LlmSettings(), {
        apiKey: 'test-key',
        baseUrl: `${edge.baseUrl}/v1`,
        model: 'm',
        timeoutMs: 5_000,
        maxRetries: 2,
        retryBaseMs: 1,
        ...over,
      }),
    );

  /** One turn against the scripted answers; afterwards nothing may be left open upstream. */
  const turn = async (answers: Answer[], over?: Partial<LlmSettings>): Promise<Outcome> => {
    edge.play(...answers);
    const out = await collect(provider(over).stream({ messages: [{ role: 'user', content: 'hi' }] }));
    await edge.idle();
    expect(edge.open).toBe(0);
    return out;
  };

  /** Each stream case, delivered whole and one byte per write. */
  const bothWays = (name: string, answer: Answer, check: (out: Outcome) => void) => {
    it.each([
      ['in one write', false],
      ['one byte per write', true],
    ])(`${name} (%s)`, async (_how, bytewise) => {
      check(await turn([{ ...answer, bytewise }]));
    });
  };

  // ---- 2xx answers that are not event streams ----

  it('200 with a JSON error body: classified by its own words (401 → upstream_auth, not retried)', async () => {
    const body = JSON.stringify({ error: { message: 'Incorrect API key provided.', type: 'invalid_request_error', code: 'invalid_api_key' } });
    const out = await turn([{ headers: JSON_TYPE, body }]);
    expect(out.error).toMatchObject({ code: 'upstream_auth', message: expect.stringContaining('Incorrect API key provided.') });
    expect(edge.requests).toBe(1);
  });

  bothWays(
    '200 with a whole non-streamed chat.completion: its reasoning, content, finish_reason and usage',
    {
      headers: JSON_TYPE,
      body: JSON.stringify({
        id: 'x',
        object: 'chat.completion',
        choices: [{ index: 0, message: { role: 'assistant', content: 'Grüße 🎉', reasoning_content: 'Hm.' }, finish_reason: 'length' }],
        usage: { prompt_tokens: 4, completion_tokens: 6, total_tokens: 10 },
      }),
    },
    (out) => {
      expect(out.error).toBeUndefined();
      expect(text(out, 'reasoning')).toBe('Hm.');
      expect(text(out, 'content')).toBe('Grüße 🎉');
      expect(out.events.slice(-2)).toEqual([
        { type: 'usage', usage: { prompt_tokens: 4, completion_tokens: 6, total_tokens: 10 } },
        { type: 'finish', reason: 'length', complete: true },
      ]);
    },
  );

  it('200 text/html (a captive portal): upstream_bad_response naming the page by its <title>, not retried', async () => {
    const body = '<!DOCTYPE html>\r\n<html><head><title>Hotel  Wi-Fi &amp; Login</title></head>\r\n<body>Sign in</body></html>';
    const out = await turn([{ headers: { 'Content-Type': 'text/html; charset=utf-8' }, body }]);
    expect(out.events).toEqual([]);
    expect(out.error).toMatchObject({ code: 'upstream_bad_response' });
    expect(out.error!.message).toContain('an HTML page titled "Hotel Wi-Fi & Login"');
    expect(out.error!.message).not.toMatch(/[<\r\n]/);
    expect(edge.requests).toBe(1);
  });

  it.each([
    ['an event stream', SSE],
    ['JSON', JSON_TYPE],
    ['no content type', {}],
  ])('an empty 200 (%s): upstream_bad_response, never an empty complete answer', async (_name, headers) => {
    const out = await turn([{ headers, body: '' }]);
    expect(out.events).toEqual([]);
    expect(out.error).toMatchObject({ code: 'upstream_bad_response', message: expect.stringMatching(/empty body|without any event/) });
  });

  it('200 JSON that is neither an error nor a completion: upstream_bad_response quoting it', async () => {
    const out = await turn([{ headers: JSON_TYPE, body: '{"status":"ok"}' }]);
    expect(out.error).toMatchObject({ code: 'upstream_bad_response', message: expect.stringContaining('{\\"status\\":\\"ok\\"}') });
  });

  it('an event stream sent as text/plain is still read as one', async () => {
    const out = await turn([{ headers: { 'Content-Type': 'text/plain' }, body: chunk({ content: 'plain' }, 'stop') + DONE }]);
    expect(out.error).toBeUndefined();
    expect(text(out, 'content')).toBe('plain');
  });

  // ---- compression ----

  for (const [encoding, compress] of [
    ['gzip', zlib.gzipSync],
    ['deflate', zlib.deflateSync],
    ['br', zlib.brotliCompressSync],
  ] as const) {
    bothWays(
      `${encoding}-encoded event stream is decompressed`,
      { headers: { ...SSE, 'Content-Encoding': encoding }, body: compress(Buffer.from(chunk({ content: 'zipped ✓' }, 'stop') + usageChunk + DONE)) },
      (out) => {
        expect(out.error).toBeUndefined();
        expect(text(out, 'content')).toBe('zipped ✓');
        expect(out.events.at(-1)).toEqual({ type: 'finish', reason: 'stop', complete: true });
      },
    );
  }

  it('the request asks for no compression', async () => {
    let seen: string | undefined;
    const server = http.createServer((req, res) => {
      seen = req.headers['accept-encoding'];
      res.writeHead(200, SSE);
      res.end(chunk({ content: 'ok' }, 'stop') + DONE);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      await collect(provider({ baseUrl: url }).stream({ messages: [{ role: 'user', content: 'hi' }] }));
      expect(seen).toBe('identity');
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  // ---- errors inside the stream ----

  bothWays(
    "llama.cpp's `error:` field (a 400 by its code): upstream_bad_request, not retried",
    { headers: SSE, body: 'error: {"code":400,"message":"the request exceeds the available context size","type":"exceed_context_size_error"}\n\n' },
    (out) => {
      expect(out.error).toMatchObject({ code: 'upstream_bad_request', message: expect.stringContaining('exceeds the available context size') });
      expect(edge.requests).toBe(1);
    },
  );

  bothWays(
    '`event: error` with a plain-text data line keeps its text',
    { headers: SSE, body: chunk({ role: 'assistant', content: '' }) + 'event: error\ndata: model went away\n\n' },
    (out) => {
      expect(out.error).toMatchObject({ code: 'upstream_bad_response', message: expect.stringContaining('model went away') });
    },
  );

  bothWays(
    'old vLLM\'s `{"object":"error","message":…,"code":404}`: upstream_bad_request with its words',
    { headers: SSE, body: 'data: {"object":"error","message":"The model `x` does not exist.","type":"NotFoundError","param":null,"code":404}\n\n' },
    (out) => {
      expect(out.error).toMatchObject({ code: 'upstream_bad_request', message: expect.stringContaining('does not exist') });
      expect(edge.requests).toBe(1);
    },
  );

  it.each([
    [401, 'invalid_api_key', 'upstream_auth', 1],
    [429, 'rate_limit_exceeded', 'upstream_rate_limited', 3],
    [500, 'server_error', 'upstream_unavailable', 3],
  ])('an error sent as 200 + data: {"error":…} with %s: %s → %s after %s request(s)', async (status, type, code, requests) => {
    const body = `data: ${JSON.stringify({ error: { message: `mock ${status}`, type, code: String(status) } })}\n\n`;
    const out = await turn([{ headers: SSE, body }]);
    expect(out.error).toMatchObject({ code, message: expect.stringContaining(`mock ${status}`) });
    expect(edge.requests).toBe(requests);
  });

  it('an error object after the first piece: the piece, then upstream_interrupted', async () => {
    const out = await turn([{ headers: SSE, body: chunk({ content: 'half' }) + 'data: {"error":{"message":"boom","code":500}}\n\n' }]);
    expect(text(out, 'content')).toBe('half');
    expect(out.error).toMatchObject({ code: 'upstream_interrupted' });
    expect(edge.requests).toBe(1);
  });

  // ---- event streams that end or start oddly ----

  bothWays(
    'the last event ends with a single \\n and the connection closes: the last piece is kept',
    { headers: SSE, body: chunk({ content: 'one ' }) + chunk({ content: 'two' }, 'stop').replace(/\n\n$/, '\n') },
    (out) => {
      expect(text(out, 'content')).toBe('one two');
      expect(out.events.at(-1)).toEqual({ type: 'finish', reason: 'stop', complete: true });
    },
  );

  bothWays(
    'the last event without any newline: still read',
    { headers: SSE, body: chunk({ content: 'a' }) + chunk({ content: 'b' }, 'stop').replace(/\n\n$/, '') },
    (out) => expect(text(out, 'content')).toBe('ab'),
  );

  bothWays(
    'a BOM before the first event: the first event (and its text) is kept',
    { headers: SSE, body: '\uFEFF' + chunk({ content: 'first' }) + chunk({ content: ' second' }, 'stop') + DONE },
    (out) => expect(text(out, 'content')).toBe('first second'),
  );

  bothWays(
    '`data: ping` (not JSON) before the content is skipped; CRLF line endings',
    { headers: SSE, body: ('data: ping\n\n: keep-alive\n\n' + chunk({ content: 'pong' }, 'stop') + DONE).replace(/\n/g, '\r\n') },
    (out) => {
      expect(out.error).toBeUndefined();
      expect(text(out, 'content')).toBe('pong');
    },
  );

  bothWays(
    'only tool-call deltas (finish_reason tool_calls): upstream_bad_response saying tools are not enabled',
    {
      headers: SSE,
      body:
        chunk({ role: 'assistant', content: null, tool_calls: [{ index: 0, id: 't1', type: 'function', function: { name: 'get_weather', arguments: '' } }] }) +
        chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":"Oslo"}' } }] }) +
        chunk({}, 'tool_calls') +
        DONE,
    },
    (out) => {
      expect(out.events).toEqual([]);
      expect(out.error).toMatchObject({ code: 'upstream_bad_response', message: 'The model asked to call a tool; tools are not enabled here.' });
    },
  );

  it.each(['length', 'content_filter'])('finish_reason %s: the answer, with its reason', async (reason) => {
    const out = await turn([{ headers: SSE, body: chunk({ content: 'cut' }, reason) + DONE }]);
    expect(out.events.at(-1)).toEqual({ type: 'finish', reason, complete: true });
  });

  it('a stream with a finish_reason but no text at all: upstream_bad_response', async () => {
    const out = await turn([{ headers: SSE, body: chunk({ role: 'assistant', content: '' }) + chunk({}, 'stop') + DONE }]);
    expect(out.error).toMatchObject({ code: 'upstream_bad_response', message: "The model API's answer was empty (finish_reason stop)." });
  });

  it('one event larger than the cap (a 20 MB line without a newline): the attempt fails, the request is dropped', async () => {
    const huge = Buffer.alloc(20 * 1024 * 1024, 'a');
    huge.write('data: {"x":"', 0);
    const out = await turn([{ headers: SSE, body: huge }], { maxRetries: 0 });
    expect(out.error).toMatchObject({
      code: 'upstream_bad_response',
      message: `The model API sent an event of more than ${MAX_EVENT_CHARS / 1024 / 1024} MB.`,
    });
  });

  // ---- HTTP error bodies ----

  it('{"error":"text"} keeps its text', async () => {
    const out = await turn([{ status: 400, headers: JSON_TYPE, body: '{"error":"model \\"x\\" not found, try pulling it first"}' }]);
    expect(out.error).toMatchObject({ code: 'upstream_bad_request', message: expect.stringContaining('model "x" not found, try pulling it first') });
  });

  it('an HTML 502 from a proxy: its title, no markup or CRLFs', async () => {
    const body =
      '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';
    const out = await turn([{ status: 502, headers: { 'Content-Type': 'text/html' }, body }], { maxRetries: 0 });
    expect(out.error).toMatchObject({ code: 'upstream_unavailable', message: 'The model API is unavailable (502): 502 Bad Gateway' });
  });

  it('an HTML 404 from the completions path hints that base URLs usually end in /v1', async () => {
    const body = '<!DOCTYPE html><html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>';
    const out = await turn([{ status: 404, headers: { 'Content-Type': 'text/html' }, body }], { baseUrl: edge.baseUrl });
    expect(out.error).toMatchObject({ code: 'upstream_bad_request' });
    expect(out.error!.message).toBe('The model API has no /chat/completions (404): 404 Not Found; base URLs usually end in /v1.');
    const withV1 = await turn([{ status: 404, headers: { 'Content-Type': 'text/html' }, body }]);
    expect(withV1.error!.message).toBe('The model API has no /v1/chat/completions (404): 404 Not Found.');
  });
});

describe('bad model answers through the whole server (e2e)', () => {
  let edge: EdgeServer;
  let app: RunningApp;
  let client: WsTestClient;
  let settings: Record<string, string>;
  beforeAll(async () => {
    edge = await EdgeServer.start();
    settings = { DEEPSEEK_BASE_URL: `${edge.baseUrl}/v1`, DEEPSEEK_API_KEY: 'k', LLM_MAX_RETRIES: '0', DATABASE_URL: tempDatabaseUrl() };
    app = await startApp(settings);
  });
  beforeEach(async () => {
    client = await WsTestClient.connect(app.wsUrl);
  });
  afterEach(() => client.close());
  afterAll(async () => {
    await app.close();
    await edge.close();
  });

  it('a captive portal ends the turn with an upstream_bad_response error and status error, not a blank answer', async () => {
    edge.play({ headers: { 'Content-Type': 'text/html' }, body: '<html><head><title>Sign in to the network</title></head></html>' });
    client.send({ type: 'user_message', id: 'r1', content: 'hello' });
    const frames = await client.collect((f) => f.type === 'agent_response_end');
    const error = frames.find((f) => f.type === 'error');
    expect(error).toMatchObject({ code: 'upstream_bad_response', message: expect.stringContaining('"Sign in to the network"') });
    expect(frames.at(-1)).toMatchObject({ type: 'agent_response_end', status: 'error', content: '' });
    await edge.idle();
  });

  it('finish_reason length reaches agent_response_end, and a resume after the log is gone rebuilds it from the row', async () => {
    edge.play({ headers: SSE, body: chunk({ content: 'The first half' }, 'length') + usageChunk + DONE });
    client.send({ type: 'user_message', id: 'r2', content: 'write a lot' });
    const end = await client.next((f) => f.type === 'agent_response_end');
    expect(end).toMatchObject({ status: 'complete', content: 'The first half', finish_reason: 'length' });
    await edge.idle();

    // A fresh server on the same database keeps no log: the end frame comes from the stored row.
    client.close();
    await app.close();
    app = await startApp(settings);
    client = await WsTestClient.connect(app.wsUrl);
    client.send({ type: 'resume', message_id: end.message_id, after_seq: 0 });
    expect(await client.next((f) => f.type === 'agent_response_end')).toMatchObject({
      message_id: end.message_id,
      status: 'complete',
      content: 'The first half',
      finish_reason: 'length',
    });
  });
});

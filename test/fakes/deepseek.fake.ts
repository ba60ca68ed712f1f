/**
 * A real HTTP server (node:http on 127.0.0.1, any free port) that speaks DeepSeek's chat-completions
 * wire format: SSE chunks `data: {json}\n\n`, `: keep-alive` comments, the usage chunk with
 * `choices: []`, `data: [DONE]`, and DeepSeek's JSON error bodies. Tests script it per request with
 * `enqueue` / `setDefault`; see /work/shared/UPSTREAM.md for the facts it follows.
 */
import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Scenario =
  | {
      kind: 'stream';
      reasoning?: string[];
      content: string[];
      /** Default 'stop'. */
      finishReason?: string;
      /** Default true: the usage chunk (choices: []) before [DONE], only when the request asked
       * stream_options.include_usage. */
      usage?: boolean;
      /** Between chunks, default 0. */
      delayMs?: number;
      /** ': keep-alive' comment lines before the first data chunk, default 0. */
      keepAlives?: number;
      /** Spacing of those comments, default 10. */
      keepAliveMs?: number;
      /** If given, wait for it after the role chunk before sending pieces. */
      gate?: Promise<void>;
    }
  /** JSON body {"error":{"message","type","param":null,"code"}} as DeepSeek sends it. */
  | { kind: 'error'; status: number; message?: string }
  /** Streams those pieces, then destroys the socket (no finish_reason, no [DONE]). */
  | { kind: 'cut'; reasoning?: string[]; content: string[]; delayMs?: number }
  /** 200 + SSE headers, then only ': keep-alive' comments every keepAliveEveryMs (or nothing). */
  | { kind: 'hang'; keepAliveEveryMs?: number }
  /** Destroys the connection without any HTTP response. */
  | { kind: 'refuse' };

export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

interface FakeOptions {
  /** Default 'test-key'; requests with another Bearer key get 401. */
  apiKey?: string;
  /** Default ['deepseek-v4-flash', 'deepseek-v4-pro']. */
  models?: string[];
}

/** Error bodies as DeepSeek sends them, by status. */
const ERRORS: Record<number, { message: string; type: string; code: string | null }> = {
  400: { message: 'Invalid request body', type: 'invalid_request_error', code: 'invalid_request_error' },
  401: {
    message: 'Authentication Fails, Your api key is invalid',
    type: 'authentication_error',
    code: 'invalid_request_error',
  },
  402: { message: 'Insufficient Balance', type: 'unknown_error', code: 'invalid_request_error' },
  403: { message: 'Forbidden', type: 'permission_error', code: 'invalid_request_error' },
  404: { message: 'Not Found', type: 'invalid_request_error', code: 'invalid_request_error' },
  422: { message: 'Invalid parameters', type: 'invalid_request_error', code: 'invalid_request_error' },
  429: {
    message: 'Rate limit reached for requests, please slow down',
    type: 'rate_limit_error',
    code: 'rate_limit_exceeded',
  },
  500: { message: 'Internal server error', type: 'api_error', code: 'internal_server_error' },
  502: { message: 'Bad gateway', type: 'api_error', code: 'bad_gateway' },
  503: { message: 'Server overloaded, please try again later', type: 'api_error', code: 'server_overloaded' },
  504: { message: 'Gateway timeout', type: 'api_error', code: 'gateway_timeout' },
};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Splits text into pieces of about `size` characters. */
function splitPieces(text: string, size = 5): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

function tokens(chars: number): number {
  return Math.ceil(chars / 4);
}

function messageText(body: any): string {
  const messages: any[] = Array.isArray(body?.messages) ? body.messages : [];
  return messages
    .map((m) =>
      typeof m?.content === 'string'
        ? m.content
        : Array.isArray(m?.content)
          ? m.content.map((p: any) => (typeof p?.text === 'string' ? p.text : '')).join('')
          : '',
    )
    .join('\n');
}

function lastUserContent(body: any): string {
  const messages: any[] = Array.isArray(body?.messages) ? body.messages : [];
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m?.role !== 'user') continue;
    if (typeof m.content === 'string') return m.content;
    if (Array.isArray(m.content)) {
      return m.content.map((p: any) => (typeof p?.text === 'string' ? p.text : '')).join('');
    }
    return '';
  }
  return '';
}

/** The built-in default: `Echo: <last user message>` in ~5-character pieces, thinking first unless disabled. */
function defaultScenario(body: any): Scenario {
  const thinkingDisabled = body?.thinking?.type === 'disabled';
  return {
    kind: 'stream',
    reasoning: thinkingDisabled ? undefined : ['Let me ', 'think.'],
    content: splitPieces(`Echo: ${lastUserContent(body)}`),
  };
}

/** State of one chat/completions response in progress. */
interface Exchange {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  /** The client went away (or the fake closed) before the response was finished. */
  gone: boolean;
  /** The fake itself ends/destroys the connection on purpose (cut, refuse, close). */
  selfEnded: boolean;
  /** Resolves when the exchange is over (finished, client gone, or fake closed). */
  over: Promise<void>;
}

export class FakeDeepSeek {
  readonly baseUrl: string;
  readonly requests: RecordedRequest[] = [];
  /** chat/completions requests whose client disconnected before the fake finished its response. */
  aborted = 0;
  /** Responses currently in progress. */
  openStreams = 0;

  private readonly queue: Scenario[] = [];
  private defaultScenario: Scenario | ((body: any) => Scenario) | undefined;
  private readonly exchanges = new Set<Exchange>();
  private readonly abortWaiters = new Set<() => void>();
  private closing = false;

  private constructor(
    private readonly server: http.Server,
    private readonly apiKey: string,
    private readonly models: string[],
  ) {
    const { port } = server.address() as AddressInfo;
    this.baseUrl = `http://127.0.0.1:${port}`;
  }

  static async start(opts: FakeOptions = {}): Promise<FakeDeepSeek> {
    const server = http.createServer();
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const fake = new FakeDeepSeek(
      server,
      opts.apiKey ?? 'test-key',
      opts.models ?? ['deepseek-v4-flash', 'deepseek-v4-pro'],
    );
    server.on('request', (req, res) => {
      fake.handle(req, res).catch(() => {
        if (!res.headersSent && !res.destroyed) {
          res.writeHead(500, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify({ error: { message: 'fake failure', type: 'api_error', param: null, code: null } }));
        } else {
          res.destroy();
        }
      });
    });
    return fake;
  }

  /** Scenarios consumed one per chat/completions request, in order. */
  enqueue(...s: Scenario[]): void {
    this.queue.push(...s);
  }

  /** Used when the queue is empty. */
  setDefault(s: Scenario | ((body: any) => Scenario)): void {
    this.defaultScenario = s;
  }

  /** Resolves when `aborted >= n`. */
  waitForAborted(n: number, timeoutMs = 5_000): Promise<void> {
    if (this.aborted >= n) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (this.aborted >= n) {
          clearTimeout(timer);
          this.abortWaiters.delete(check);
          resolve();
        }
      };
      const timer = setTimeout(() => {
        this.abortWaiters.delete(check);
        reject(new Error(`FakeDeepSeek: aborted is ${this.aborted}, expected >= ${n} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.abortWaiters.add(check);
    });
  }

  /** Ends everything, including hanging responses, and stops listening. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const ex of this.exchanges) {
      ex.selfEnded = true;
      ex.gone = true;
      ex.res.destroy();
    }
    for (const check of this.abortWaiters) check();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  // ---------------------------------------------------------------------------------------------

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0].replace(/\/+$/, '') || '/';
    const raw = await readBody(req);

    if (req.method === 'GET' && (path === '/models' || path === '/v1/models')) {
      if (!this.authorized(req)) return this.sendError(res, 401);
      return this.sendJson(res, 200, {
        object: 'list',
        data: this.models.map((id) => ({ id, object: 'model', owned_by: 'deepseek' })),
      });
    }

    if (path !== '/chat/completions' && path !== '/v1/chat/completions') {
      return this.sendError(res, 404);
    }
    if (req.method !== 'POST') {
      return this.sendJson(res, 405, {
        error: { message: 'Method Not Allowed', type: 'invalid_request_error', param: null, code: null },
      });
    }

    let body: any;
    let parsed = true;
    try {
      body = raw.length ? JSON.parse(raw) : undefined;
    } catch {
      body = raw;
      parsed = false;
    }
    this.requests.push({ method: req.method ?? 'POST', path, headers: { ...req.headers }, body });

    const ex = this.track(req, res);
    try {
      if (!this.authorized(req)) return this.sendError(res, 401);
      if (!parsed || typeof body !== 'object' || body === null) {
        return this.sendError(res, 400, 'Failed to deserialize the JSON body into the target type');
      }
      const scenario = this.nextScenario(body);
      await this.play(ex, body, scenario);
    } finally {
      if (!ex.gone && !res.writableEnded && !res.destroyed) res.end();
    }
  }

  private nextScenario(body: any): Scenario {
    const queued = this.queue.shift();
    if (queued) return queued;
    const d = this.defaultScenario;
    if (typeof d === 'function') return d(body);
    return d ?? defaultScenario(body);
  }

  private authorized(req: http.IncomingMessage): boolean {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    return !!match && match[1].trim() === this.apiKey;
  }

  private track(req: http.IncomingMessage, res: http.ServerResponse): Exchange {
    let finish!: () => void;
    const ex: Exchange = {
      req,
      res,
      gone: false,
      selfEnded: false,
      over: new Promise<void>((resolve) => (finish = resolve)),
    };
    this.exchanges.add(ex);
    this.openStreams++;
    res.on('close', () => {
      this.exchanges.delete(ex);
      this.openStreams--;
      if (!res.writableFinished) {
        ex.gone = true;
        if (!ex.selfEnded && !this.closing) {
          this.aborted++;
          for (const check of [...this.abortWaiters]) check();
        }
      }
      finish();
    });
    return ex;
  }

  private sendJson(res: http.ServerResponse, status: number, payload: unknown): void {
    const text = JSON.stringify(payload);
    res.writeHead(status, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(text),
    });
    res.end(text);
  }

  private sendError(res: http.ServerResponse, status: number, message?: string): void {
    const known = ERRORS[status] ?? {
      message: status >= 500 ? 'Server error' : 'Request failed',
      type: status >= 500 ? 'api_error' : 'invalid_request_error',
      code: null,
    };
    this.sendJson(res, status, {
      error: { message: message ?? known.message, type: known.type, param: null, code: known.code },
    });
  }

  private async play(ex: Exchange, body: any, scenario: Scenario): Promise<void> {
    const { req, res } = ex;
    switch (scenario.kind) {
      case 'error':
        return this.sendError(res, scenario.status, scenario.message);

      case 'refuse':
        ex.selfEnded = true;
        req.socket.destroy();
        return;

      case 'hang': {
        startSse(res);
        const every = scenario.keepAliveEveryMs;
        if (!every || every <= 0) {
          await ex.over;
          return;
        }
        while (!ex.gone) {
          await Promise.race([sleep(every), ex.over]);
          if (ex.gone) return;
          res.write(': keep-alive\n\n');
        }
        return;
      }

      case 'cut': {
        const w = new ChunkWriter(body, scenario.reasoning !== undefined);
        startSse(res);
        const delay = scenario.delayMs ?? 0;
        const send = async (payload: object) => {
          if (ex.gone) return;
          await writeAsync(ex, `data: ${JSON.stringify(payload)}\n\n`);
          if (delay > 0) await Promise.race([sleep(delay), ex.over]);
        };
        await send(w.roleChunk());
        for (const piece of scenario.reasoning ?? []) await send(w.reasoningChunk(piece));
        for (const piece of scenario.content) await send(w.contentChunk(piece, null));
        if (ex.gone) return;
        // Let the client read what was sent, then break the stream without a terminating chunk.
        await Promise.race([sleep(20), ex.over]);
        ex.selfEnded = true;
        req.socket.destroy();
        return;
      }

      case 'stream':
        return this.playStream(ex, body, scenario);
    }
  }

  private async playStream(ex: Exchange, body: any, s: Extract<Scenario, { kind: 'stream' }>): Promise<void> {
    const { res } = ex;
    const reasoning = s.reasoning ?? [];
    const thinking = s.reasoning !== undefined;
    const w = new ChunkWriter(body, thinking);
    const finishReason = s.finishReason ?? 'stop';
    const wantsUsage = body?.stream_options?.include_usage === true && s.usage !== false;
    const delay = s.delayMs ?? 0;

    if (body?.stream !== true) return this.playNonStreaming(ex, body, s);

    startSse(res);
    for (let i = 0; i < (s.keepAlives ?? 0); i++) {
      if (ex.gone) return;
      res.write(': keep-alive\n\n');
      await Promise.race([sleep(s.keepAliveMs ?? 10), ex.over]);
    }

    let first = true;
    const send = async (payload: object) => {
      if (ex.gone) return;
      if (!first && delay > 0) await Promise.race([sleep(delay), ex.over]);
      first = false;
      if (ex.gone) return;
      await writeAsync(ex, `data: ${JSON.stringify(payload)}\n\n`);
    };

    await send(w.roleChunk());
    if (s.gate) await Promise.race([s.gate, ex.over]);
    for (const piece of reasoning) await send(w.reasoningChunk(piece));
    if (s.content.length === 0) {
      await send(w.contentChunk('', finishReason));
    } else {
      for (let i = 0; i < s.content.length; i++) {
        await send(w.contentChunk(s.content[i], i === s.content.length - 1 ? finishReason : null));
      }
    }
    if (wantsUsage) await send(w.usageChunk(reasoning, s.content));
    if (ex.gone) return;
    await writeAsync(ex, 'data: [DONE]\n\n');
    res.end();
  }

  /** `stream: false`: DeepSeek sends empty lines while waiting, then one chat.completion object. */
  private async playNonStreaming(ex: Exchange, body: any, s: Extract<Scenario, { kind: 'stream' }>) {
    const { res } = ex;
    const w = new ChunkWriter(body, s.reasoning !== undefined);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    for (let i = 0; i < (s.keepAlives ?? 0); i++) {
      if (ex.gone) return;
      res.write('\n');
      await Promise.race([sleep(s.keepAliveMs ?? 10), ex.over]);
    }
    if (s.gate) await Promise.race([s.gate, ex.over]);
    if (ex.gone) return;
    res.end(JSON.stringify(w.completion(s.reasoning, s.content, s.finishReason ?? 'stop')));
  }
}

/** Builds DeepSeek-shaped chunks for one response. */
class ChunkWriter {
  private readonly id = randomUUID();
  private readonly created = Math.floor(Date.now() / 1000);
  private readonly model: string;
  private readonly promptTokens: number;

  constructor(
    body: any,
    private readonly thinking: boolean,
  ) {
    this.model = typeof body?.model === 'string' ? body.model : 'deepseek-v4-flash';
    this.promptTokens = tokens(messageText(body).length);
  }

  private base(choices: object[], usage: object | null = null) {
    return {
      id: this.id,
      object: 'chat.completion.chunk',
      created: this.created,
      model: this.model,
      system_fingerprint: 'fp_fake_deepseek_v4',
      choices,
      usage,
    };
  }

  private choice(delta: object, finishReason: string | null) {
    return { index: 0, delta, logprobs: null, finish_reason: finishReason };
  }

  roleChunk() {
    const delta = this.thinking
      ? { role: 'assistant', content: null, reasoning_content: '' }
      : { role: 'assistant', content: '' };
    return this.base([this.choice(delta, null)]);
  }

  reasoningChunk(piece: string) {
    return this.base([this.choice({ content: null, reasoning_content: piece }, null)]);
  }

  contentChunk(piece: string, finishReason: string | null) {
    const delta = this.thinking ? { content: piece, reasoning_content: null } : { content: piece };
    return this.base([this.choice(delta, finishReason)]);
  }

  usage(reasoning: string[], content: string[]) {
    const reasoningTokens = tokens(reasoning.join('').length);
    const completion = reasoningTokens + tokens(content.join('').length);
    return {
      prompt_tokens: this.promptTokens,
      completion_tokens: completion,
      total_tokens: this.promptTokens + completion,
      prompt_tokens_details: { cached_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: reasoningTokens },
      prompt_cache_hit_tokens: 0,
      prompt_cache_miss_tokens: this.promptTokens,
    };
  }

  usageChunk(reasoning: string[], content: string[]) {
    return this.base([], this.usage(reasoning, content));
  }

  completion(reasoning: string[] | undefined, content: string[], finishReason: string) {
    const message: Record<string, unknown> = { role: 'assistant', content: content.join('') };
    if (reasoning !== undefined) message.reasoning_content = reasoning.join('');
    return {
      id: this.id,
      object: 'chat.completion',
      created: this.created,
      model: this.model,
      system_fingerprint: 'fp_fake_deepseek_v4',
      choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason }],
      usage: this.usage(reasoning ?? [], content),
    };
  }
}

function startSse(res: http.ServerResponse): void {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-cache',
    Connection: 'keep-alive',
  });
  res.flushHeaders();
}

/** Writes and waits until the data is handed to the socket (or the exchange is over). */
function writeAsync(ex: Exchange, text: string): Promise<void> {
  const { res } = ex;
  if (ex.gone || res.destroyed || res.writableEnded) return Promise.resolve();
  return Promise.race([new Promise<void>((resolve) => res.write(text, () => resolve())), ex.over]);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
    req.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

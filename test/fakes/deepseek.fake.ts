/**
 * A real HTTP server (node:http on 127.0.0.1, any free port) that speaks DeepSeek's chat-completions
 * wire format: SSE chunks `data: {json}\n\n`, `: keep-alive` comments, the usage chunk with
 * `choices: []`, `data: [DONE]`, and DeepSeek's JSON error bodies. Tests script it per request with
 * `enqueue` / `setDefault`; see /work/shared/UPSTREAM.md for the facts it follows.
 *
 * It also plays other OpenAI-compatible servers (`dialect`, per fake or per scenario):
 * - `deepseek` (default): the above;
 * - `ollama`: thinking in `delta.reasoning`, every delta with `role`, no `logprobs`, models owned by `library`;
 * - `think-tags` (older llama.cpp builds, R1 distills): thinking inline as `<think>…</think>` at the
 *   start of `content`; the usage rides on the finish chunk (llama.cpp style);
 * - `strict-openai`: answers 400 with OpenAI's error body naming the first unknown top-level field
 *   (`thinking`, …); otherwise streams like vLLM (`reasoning_content`);
 * - `minimal`: bare chunks (`{"choices":[{"delta":{…}}]}`), no usage chunk, no finish_reason, no
 *   `[DONE]` (the connection just ends), and 404 on `/models`.
 * and wire-format switches (`wire`): CRLF line endings, `data:` without a space, several events in
 * one write, one event split across writes.
 */
import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Dialect = 'deepseek' | 'ollama' | 'think-tags' | 'strict-openai' | 'minimal';

export interface WireFormat {
  /** `\r\n` line endings instead of `\n`. */
  crlf?: boolean;
  /** `data:{json}` without the space after the colon. */
  noSpace?: boolean;
  /** Several events in one write: this many per write; `true` = the whole response in one write. */
  batch?: number | true;
  /** Every write cut into slices of this many bytes (UTF-8 characters get cut too), each written
   * on its own after a pause, so one event arrives over several network reads. */
  splitBytes?: number;
  /** Pause between those slices, default 1 ms. */
  splitPauseMs?: number;
}

/** Shared by the scenarios that stream. */
interface Wire {
  /** Overrides the fake's dialect for this response. */
  dialect?: Dialect;
  /** Overrides the fake's wire format for this response. */
  wire?: WireFormat;
  /** think-tags only: re-cut the inline text into pieces of this many characters, so that the tags
   * are split across chunks ('<th' + 'ink' + '>…'). Default: the tags are whole pieces. */
  tagSplit?: number;
}

export type Scenario =
  | ({
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
      /** If given, wait for `gate` before sending piece number `piece` (0-based, reasoning pieces first). */
      pauseAt?: { piece: number; gate: Promise<void> };
    } & Wire)
  /** JSON body {"error":{"message","type","param":null,"code"}} as DeepSeek sends it. */
  | { kind: 'error'; status: number; message?: string }
  /** Streams those pieces, then destroys the socket (no finish_reason, no [DONE]). */
  | ({ kind: 'cut'; reasoning?: string[]; content: string[]; delayMs?: number } & Wire)
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
  /** Default 'deepseek'. Scenarios may override it. */
  dialect?: Dialect;
  /** Default: `data: ` lines ending in `\n`, one event per write. Scenarios may override it. */
  wire?: WireFormat;
  /** strict-openai: the top-level request fields it accepts (default: OpenAI's chat completion fields). */
  knownFields?: string[];
}

/** Top-level fields of OpenAI's chat completion request (what a strict server accepts). */
export const OPENAI_FIELDS = [
  'model',
  'messages',
  'stream',
  'stream_options',
  'temperature',
  'top_p',
  'n',
  'stop',
  'max_tokens',
  'max_completion_tokens',
  'presence_penalty',
  'frequency_penalty',
  'logit_bias',
  'logprobs',
  'top_logprobs',
  'user',
  'seed',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'response_format',
  'reasoning_effort',
  'service_tier',
  'store',
  'metadata',
  'modalities',
  'audio',
  'prediction',
  'web_search_options',
];

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

/** A request for a chat's title: its system message asks for a "short title". */
function isTitleRequest(body: any): boolean {
  const first = Array.isArray(body?.messages) ? body.messages[0] : undefined;
  return first?.role === 'system' && typeof first.content === 'string' && /short title/i.test(first.content);
}

/** `Title: <the first four words of the question's first line>` (the server strips the "Title:"). */
function defaultTitleScenario(body: any): Scenario {
  const question = lastUserContent(body)
    .replace(/^Question:\s*/, '')
    .split('\n')[0]
    .split(/\s+/)
    .slice(0, 4)
    .join(' ');
  return { kind: 'stream', content: ['Title: ', question] };
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

  /**
   * Title requests (a system message asking for a "short title", as the server's TitleService
   * sends): recorded here instead of `requests`, and answered from `enqueueTitle` scenarios, else
   * by `Title: <the question's first words>`, so they never take a turn's queued scenario.
   */
  readonly titleRequests: RecordedRequest[] = [];
  private readonly titleQueue: Scenario[] = [];
  private readonly queue: Scenario[] = [];
  private defaultScenario: Scenario | ((body: any) => Scenario) | undefined;
  private readonly exchanges = new Set<Exchange>();
  private readonly abortWaiters = new Set<() => void>();
  private closing = false;

  private constructor(
    private readonly server: http.Server,
    private readonly apiKey: string,
    private readonly models: string[],
    private readonly dialect: Dialect = 'deepseek',
    private readonly wire: WireFormat = {},
    private readonly knownFields: ReadonlySet<string> = new Set(OPENAI_FIELDS),
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
      opts.dialect ?? 'deepseek',
      opts.wire ?? {},
      new Set(opts.knownFields ?? OPENAI_FIELDS),
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

  /** Scenarios for title requests, one per request, in order. */
  enqueueTitle(...s: Scenario[]): void {
    this.titleQueue.push(...s);
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

    // Any base path: /chat/completions, /v1/…, OpenRouter's /api/v1/…
    if (req.method === 'GET' && (path === '/models' || path.endsWith('/v1/models'))) {
      if (this.dialect === 'minimal') {
        res.writeHead(404, { 'Content-Type': 'text/plain' });
        res.end('404 page not found');
        return;
      }
      if (!this.authorized(req)) return this.sendError(res, 401);
      const ownedBy = this.dialect === 'ollama' ? 'library' : this.dialect === 'deepseek' ? 'deepseek' : 'system';
      return this.sendJson(res, 200, {
        object: 'list',
        data: this.models.map((id) => ({ id, object: 'model', owned_by: ownedBy })),
      });
    }

    if (path !== '/chat/completions' && !path.endsWith('/v1/chat/completions')) {
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
    const recorded = { method: req.method ?? 'POST', path, headers: { ...req.headers }, body };
    const title = parsed && isTitleRequest(body);
    if (title) this.titleRequests.push(recorded);
    else this.requests.push(recorded);

    const ex = this.track(req, res);
    try {
      if (!this.authorized(req)) return this.sendError(res, 401);
      if (!parsed || typeof body !== 'object' || body === null) {
        return this.sendError(res, 400, 'Failed to deserialize the JSON body into the target type');
      }
      // A strict server refuses unknown fields before anything else (the scenario stays queued).
      if (this.dialectOf(this.peekScenario(body)) === 'strict-openai') {
        const unknown = Object.keys(body).find((k) => !this.knownFields.has(k));
        if (unknown !== undefined) {
          return this.sendJson(res, 400, {
            error: {
              message: `Unrecognized request argument supplied: ${unknown}`,
              type: 'invalid_request_error',
              param: null,
              code: null,
            },
          });
        }
      }
      const scenario = title ? (this.titleQueue.shift() ?? defaultTitleScenario(body)) : this.nextScenario(body);
      await this.play(ex, body, scenario);
    } finally {
      if (!ex.gone && !res.writableEnded && !res.destroyed) res.end();
    }
  }

  private peekScenario(body: any): Scenario {
    if (this.queue.length) return this.queue[0];
    const d = this.defaultScenario;
    if (typeof d === 'function') return d(body);
    return d ?? defaultScenario(body);
  }

  private dialectOf(s: Scenario): Dialect {
    return ((s as Wire).dialect ?? this.dialect) as Dialect;
  }

  private wireOf(s: Scenario): WireFormat {
    return (s as Wire).wire ?? this.wire;
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
        const nl = this.wire.crlf ? '\r\n' : '\n';
        startSse(res);
        const every = scenario.keepAliveEveryMs;
        if (!every || every <= 0) {
          await ex.over;
          return;
        }
        while (!ex.gone) {
          await Promise.race([sleep(every), ex.over]);
          if (ex.gone) return;
          res.write(`: keep-alive${nl}${nl}`);
        }
        return;
      }

      case 'cut': {
        const w = new ChunkWriter(body, scenario.reasoning !== undefined, this.dialectOf(scenario));
        const out = new SseWriter(ex, this.wireOf(scenario));
        startSse(res);
        const delay = scenario.delayMs ?? 0;
        const send = async (payload: object | null) => {
          if (ex.gone || !payload) return;
          await out.data(JSON.stringify(payload));
          if (delay > 0) await Promise.race([sleep(delay), ex.over]);
        };
        await send(w.roleChunk());
        for (const piece of w.pieces(scenario.reasoning ?? [], scenario.content, scenario.tagSplit)) {
          await send(piece.reasoning ? w.reasoningChunk(piece.text) : w.contentChunk(piece.text, null));
        }
        await out.flush();
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
    const dialect = this.dialectOf(s);
    const reasoning = s.reasoning ?? [];
    const thinking = s.reasoning !== undefined;
    const w = new ChunkWriter(body, thinking, dialect);
    const out = new SseWriter(ex, this.wireOf(s));
    const finishReason = s.finishReason ?? 'stop';
    const wantsUsage = body?.stream_options?.include_usage === true && s.usage !== false && dialect !== 'minimal';
    const delay = s.delayMs ?? 0;

    if (body?.stream !== true) return this.playNonStreaming(ex, body, s);

    startSse(res);
    for (let i = 0; i < (s.keepAlives ?? 0); i++) {
      if (ex.gone) return;
      await out.comment('keep-alive');
      await out.flush();
      await Promise.race([sleep(s.keepAliveMs ?? 10), ex.over]);
    }

    let first = true;
    const send = async (payload: object | null) => {
      if (ex.gone || !payload) return;
      if (!first && delay > 0) await Promise.race([sleep(delay), ex.over]);
      first = false;
      if (ex.gone) return;
      await out.data(JSON.stringify(payload));
    };

    await send(w.roleChunk());
    if (s.gate) {
      await out.flush();
      await Promise.race([s.gate, ex.over]);
    }
    const pieces = w.pieces(reasoning, s.content, s.tagSplit);
    // The finish reason rides on the last content piece (an empty one when there is none).
    let lastContent = -1;
    pieces.forEach((p, i) => {
      if (!p.reasoning) lastContent = i;
    });
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i];
      if (s.pauseAt && s.pauseAt.piece === i) {
        await out.flush();
        await Promise.race([s.pauseAt.gate, ex.over]);
      }
      if (p.reasoning) await send(w.reasoningChunk(p.text));
      else if (i === lastContent && !w.separateFinish) await send(w.contentChunk(p.text, finishReason));
      else await send(w.contentChunk(p.text, null));
    }
    if (lastContent < 0 && !w.separateFinish) await send(w.contentChunk('', finishReason));
    if (w.separateFinish) await send(w.finishChunk(finishReason, wantsUsage ? w.usage(reasoning, s.content) : null));
    else if (wantsUsage) await send(w.usageChunk(reasoning, s.content));
    if (ex.gone) return;
    if (dialect !== 'minimal') await out.done();
    await out.flush();
    if (ex.gone) return;
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

/** Builds the chunks of one response, in the dialect's shape (DeepSeek's by default). */
class ChunkWriter {
  private readonly id = randomUUID();
  private readonly created = Math.floor(Date.now() / 1000);
  private readonly model: string;
  private readonly promptTokens: number;

  constructor(
    body: any,
    private readonly thinking: boolean,
    private readonly dialect: Dialect = 'deepseek',
  ) {
    this.model = typeof body?.model === 'string' ? body.model : 'deepseek-v4-flash';
    this.promptTokens = tokens(messageText(body).length);
  }

  /** think-tags ends with its own finish chunk (empty delta), carrying the usage. */
  get separateFinish(): boolean {
    return this.dialect === 'think-tags';
  }

  /** The order of pieces on the wire; think-tags turns the reasoning into inline content. */
  pieces(reasoning: string[], content: string[], tagSplit?: number): { reasoning: boolean; text: string }[] {
    if (this.dialect !== 'think-tags') {
      return [...reasoning.map((text) => ({ reasoning: true, text })), ...content.map((text) => ({ reasoning: false, text }))];
    }
    const inline = this.thinking ? ['<think>\n', ...reasoning, '\n</think>\n\n', ...content] : [...content];
    const texts = tagSplit && tagSplit > 0 ? splitPieces(inline.join(''), tagSplit) : inline;
    return texts.map((text) => ({ reasoning: false, text }));
  }

  private base(choices: object[], usage: object | null = null) {
    switch (this.dialect) {
      case 'minimal':
        return usage ? { choices, usage } : { choices };
      case 'ollama':
        return {
          id: `chatcmpl-${this.id.slice(0, 3)}`,
          object: 'chat.completion.chunk',
          created: this.created,
          model: this.model,
          system_fingerprint: 'fp_ollama',
          choices,
          ...(usage ? { usage } : {}),
        };
      case 'think-tags':
        return {
          choices,
          created: this.created,
          id: `chatcmpl-${this.id}`,
          model: this.model,
          system_fingerprint: 'b5000-fake',
          object: 'chat.completion.chunk',
          ...(usage ? { usage } : {}),
        };
      case 'strict-openai':
        return { id: `chatcmpl-${this.id}`, object: 'chat.completion.chunk', created: this.created, model: this.model, choices, usage };
      case 'deepseek':
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
  }

  private choice(delta: object, finishReason: string | null) {
    switch (this.dialect) {
      case 'minimal':
        return { delta };
      case 'ollama':
      case 'think-tags':
        return { index: 0, delta, finish_reason: finishReason };
      case 'strict-openai':
      case 'deepseek':
        return { index: 0, delta, logprobs: null, finish_reason: finishReason };
    }
  }

  /** The opening chunk; `null` for dialects that send none. */
  roleChunk(): object | null {
    switch (this.dialect) {
      case 'minimal':
      case 'ollama':
        return null;
      case 'think-tags':
        return this.base([this.choice({ role: 'assistant', content: null }, null)]);
      case 'strict-openai':
      case 'deepseek': {
        const delta = this.thinking ? { role: 'assistant', content: null, reasoning_content: '' } : { role: 'assistant', content: '' };
        return this.base([this.choice(delta, null)]);
      }
    }
  }

  reasoningChunk(piece: string) {
    switch (this.dialect) {
      case 'ollama':
        return this.base([this.choice({ role: 'assistant', content: '', reasoning: piece }, null)]);
      case 'minimal':
      case 'strict-openai':
        return this.base([this.choice({ reasoning_content: piece }, null)]);
      case 'think-tags':
      case 'deepseek':
        return this.base([this.choice({ content: null, reasoning_content: piece }, null)]);
    }
  }

  contentChunk(piece: string, finishReason: string | null) {
    switch (this.dialect) {
      case 'ollama':
        return this.base([this.choice({ role: 'assistant', content: piece }, finishReason)]);
      case 'minimal':
      case 'think-tags':
      case 'strict-openai':
        return this.base([this.choice({ content: piece }, finishReason)]);
      case 'deepseek': {
        const delta = this.thinking ? { content: piece, reasoning_content: null } : { content: piece };
        return this.base([this.choice(delta, finishReason)]);
      }
    }
  }

  /** A chunk with an empty delta that only finishes (and may carry the usage). */
  finishChunk(finishReason: string, usage: object | null) {
    return this.base([this.choice({}, finishReason)], usage);
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

/** Writes SSE events in the wire format asked for (line endings, spacing, batching, splitting). */
class SseWriter {
  private readonly nl: string;
  private readonly pending: string[] = [];

  constructor(
    private readonly ex: Exchange,
    private readonly wire: WireFormat,
  ) {
    this.nl = wire.crlf ? '\r\n' : '\n';
  }

  data(text: string): Promise<void> {
    return this.event(`data:${this.wire.noSpace ? '' : ' '}${text}${this.nl}${this.nl}`);
  }

  comment(text: string): Promise<void> {
    return this.event(`: ${text}${this.nl}${this.nl}`);
  }

  done(): Promise<void> {
    return this.data('[DONE]');
  }

  /** Writes what batching held back. */
  async flush(): Promise<void> {
    if (!this.pending.length) return;
    const text = this.pending.join('');
    this.pending.length = 0;
    await this.write(text);
  }

  private async event(text: string): Promise<void> {
    const batch = this.wire.batch;
    if (!batch || batch === 1) return this.write(text);
    this.pending.push(text);
    if (batch !== true && this.pending.length >= batch) await this.flush();
  }

  private async write(text: string): Promise<void> {
    const size = this.wire.splitBytes ?? 0;
    if (size <= 0) return writeAsync(this.ex, text);
    const bytes = Buffer.from(text, 'utf8');
    for (let i = 0; i < bytes.length; i += size) {
      if (this.ex.gone) return;
      if (i > 0) await Promise.race([sleep(this.wire.splitPauseMs ?? 1), this.ex.over]);
      await writeAsync(this.ex, bytes.subarray(i, i + size));
    }
  }
}

/** Writes and waits until the data is handed to the socket (or the exchange is over). */
function writeAsync(ex: Exchange, text: string | Buffer): Promise<void> {
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

/**
 * The whole server against model servers that other people wrote, started as real HTTP servers:
 * `@dwmkerr/mock-llm` (its CLI, on a free port) and `@copilotkit/aimock` (its LLMock class). Text,
 * reasoning, errors, disconnects and chaos modes; each turn must end with the right frames, and
 * nothing may be left open upstream: behind a TCP tap, every connection the model server still
 * holds after a turn is one our keep-alive pool keeps idle for the next turn.
 */
import { LLMock } from '@copilotkit/aimock';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { upstreamSockets } from '../src/llm/sse-client';
import { type RunningApp, startApp } from './support/app';
import { type AnyFrame, WsTestClient } from './support/ws-client';

jest.setTimeout(60_000);

/** A TCP relay in front of a model server: counts its open connections and the requests through it. */
class Tap {
  open = 0;
  requests = 0;
  private readonly server: net.Server;

  private constructor(target: number) {
    this.server = net.createServer((client) => {
      const upstream = net.connect(target, '127.0.0.1');
      this.open++;
      let closed = false;
      const close = () => {
        if (closed) return;
        closed = true;
        this.open--;
        client.destroy();
        upstream.destroy();
      };
      client.on('data', (data: Buffer) => {
        this.requests += data.toString('latin1').split('POST /v1/chat/completions').length - 1;
      });
      client.pipe(upstream).pipe(client);
      for (const socket of [client, upstream]) {
        socket.on('close', close);
        socket.on('error', close);
      }
    });
  }

  static async start(target: number): Promise<Tap> {
    const tap = new Tap(target);
    await new Promise<void>((resolve) => tap.server.listen(0, '127.0.0.1', () => resolve()));
    return tap;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
}

/** After a turn: no request of ours in flight, and the server holds nothing but our idle pool's sockets. */
async function nothingLeftOpen(tap: Tap): Promise<void> {
  await until(() => upstreamSockets().active === 0 && tap.open <= upstreamSockets().idle);
  expect(upstreamSockets().active).toBe(0);
  expect(tap.open).toBeLessThanOrEqual(upstreamSockets().idle);
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** One user turn in a new chat: its frames up to and including agent_response_end. */
async function turn(app: RunningApp, content: string): Promise<AnyFrame[]> {
  const client = await WsTestClient.connect(app.wsUrl);
  try {
    const id = `r-${Math.random().toString(36).slice(2)}`;
    client.send({ type: 'user_message', id, content, options: { thinking: true } });
    return await client.collect((f) => f.type === 'agent_response_end' && f.id === id);
  } finally {
    client.close();
  }
}

const joined = (frames: AnyFrame[], type: string) =>
  frames
    .filter((f) => f.type === type)
    .map((f) => f.content as string)
    .join('');

const OPENAI_ERRORS: Record<number, object> = {
  401: { message: 'Incorrect API key provided: sk-mock.', type: 'invalid_request_error', param: null, code: 'invalid_api_key' },
  429: { message: 'Rate limit reached for requests', type: 'requests', param: null, code: 'rate_limit_exceeded' },
  500: { message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null },
};

describe('@dwmkerr/mock-llm (its CLI on a free port)', () => {
  let dir: string;
  let child: ChildProcess;
  let tap: Tap;
  let app: RunningApp;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mock-llm-'));
    const errorRule = (status: number) => `
  - path: "/v1/chat/completions"
    match: "contains(body.messages[-1].content, 'error-${status}')"
    response:
      status: ${status}
      content: '${JSON.stringify({ error: OPENAI_ERRORS[status] })}'`;
    writeFileSync(
      join(dir, 'mock-llm.yaml'),
      `streaming:
  chunkSize: 4
  chunkIntervalMs: 1
rules:
  - path: "/v1/chat/completions"
    match: "@"
    response:
      status: 200
      content: |
        {"id": "chatcmpl-1", "object": "chat.completion", "model": "{{jmes request body.model}}",
         "choices": [{"message": {"role": "assistant", "content": "{{jmes request body.messages[-1].content}}"}, "finish_reason": "stop"}]}
${[401, 429, 500].map(errorRule).join('')}
`,
    );
    const port = await freePort();
    child = spawn(process.execPath, [require.resolve('@dwmkerr/mock-llm/dist/main.js'), '--config', join(dir, 'mock-llm.yaml')], {
      env: { ...process.env, PORT: String(port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('server running')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`mock-llm exited (${code}): ${out}`)));
    });
    tap = await Tap.start(port);
    app = await startApp({
      DEEPSEEK_BASE_URL: `${tap.url}/v1`,
      DEEPSEEK_API_KEY: 'sk-mock',
      DEEPSEEK_MODEL: 'gpt-4',
      LLM_MAX_RETRIES: '1',
      LLM_RETRY_BASE_MS: '1',
    });
  });
  afterAll(async () => {
    await app?.close();
    await tap?.close();
    child?.kill();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => (tap.requests = 0));
  afterEach(() => nothingLeftOpen(tap));

  it('streams the echo in pieces and ends complete', async () => {
    const frames = await turn(app, 'Hello from a third-party server');
    expect(joined(frames, 'agent_response')).toBe('Hello from a third-party server');
    expect(frames.at(-1)).toMatchObject({ status: 'complete', content: 'Hello from a third-party server', finish_reason: 'stop' });
    expect(frames.filter((f) => f.type === 'agent_response').length).toBeGreaterThan(1);
  });

  it.each([
    [401, 'upstream_auth', 1, 'Incorrect API key provided'],
    [429, 'upstream_rate_limited', 2, 'Rate limit reached'],
    [500, 'upstream_unavailable', 2, 'The server had an error'],
  ])('its %s sent as 200 + data: {"error":…} → %s after %s request(s)', async (status, code, requests, words) => {
    const frames = await turn(app, `please fail with error-${status}`);
    const error = frames.find((f) => f.type === 'error');
    expect(error).toMatchObject({ code, message: expect.stringContaining(words) });
    expect(error!.message).not.toContain('sk-mock');
    expect(frames.at(-1)).toMatchObject({ type: 'agent_response_end', status: 'error', content: '' });
    expect(tap.requests).toBe(requests);
  });
});

describe('@copilotkit/aimock (LLMock on a free port)', () => {
  let mock: LLMock;
  let tap: Tap;
  let app: RunningApp;

  beforeAll(async () => {
    mock = new LLMock({ port: 0, host: '127.0.0.1' });
    await mock.start();
    tap = await Tap.start(Number(new URL(mock.url).port));
    app = await startApp({
      DEEPSEEK_BASE_URL: `${tap.url}/v1`,
      DEEPSEEK_API_KEY: 'sk-aimock-test',
      DEEPSEEK_MODEL: 'gpt-4o',
      LLM_MAX_RETRIES: '1',
      LLM_RETRY_BASE_MS: '1',
    });
  });
  afterAll(async () => {
    await app?.close();
    await tap?.close();
    await mock?.stop();
  });
  beforeEach(() => {
    mock.reset();
    tap.requests = 0;
  });
  afterEach(() => nothingLeftOpen(tap));

  it('text: pieces, then complete', async () => {
    mock.onMessage('plain text', { content: 'Hi there, from aimock!' }, { chunkSize: 5 });
    const frames = await turn(app, 'plain text please');
    expect(joined(frames, 'agent_response')).toBe('Hi there, from aimock!');
    expect(frames.at(-1)).toMatchObject({ status: 'complete', content: 'Hi there, from aimock!', finish_reason: 'stop' });
  });

  it('reasoning arrives apart from the answer', async () => {
    mock.onMessage('think', { content: 'Forty-two.', reasoning: 'Six times seven.' }, { chunkSize: 4 });
    const frames = await turn(app, 'think about it');
    expect(joined(frames, 'agent_reasoning')).toBe('Six times seven.');
    expect(joined(frames, 'agent_response')).toBe('Forty-two.');
    expect(frames.at(-1)).toMatchObject({ status: 'complete', content: 'Forty-two.', reasoning: 'Six times seven.' });
  });

  it('finish_reason length: complete, with the reason on agent_response_end', async () => {
    mock.onMessage('long essay', { content: 'The first part', finishReason: 'length' });
    const frames = await turn(app, 'a long essay');
    expect(frames.at(-1)).toMatchObject({ status: 'complete', content: 'The first part', finish_reason: 'length' });
  });

  it('an error answer (401): upstream_auth, not retried', async () => {
    mock.nextRequestError(401, { message: 'Invalid API key', type: 'authentication_error', code: 'invalid_api_key' });
    const frames = await turn(app, 'anything');
    expect(frames.find((f) => f.type === 'error')).toMatchObject({ code: 'upstream_auth', message: expect.stringContaining('Invalid API key') });
    expect(frames.at(-1)).toMatchObject({ status: 'error' });
    expect(tap.requests).toBe(1);
  });

  it('a stream cut after three chunks: the pieces, then upstream_interrupted', async () => {
    mock.onMessage('cut me', { content: 'This answer will not arrive whole.' }, { chunkSize: 5, latency: 20, truncateAfterChunks: 3 });
    const frames = await turn(app, 'cut me off');
    const text = joined(frames, 'agent_response');
    expect(text.length).toBeGreaterThan(0);
    expect('This answer will not arrive whole.'.startsWith(text)).toBe(true);
    expect(frames.find((f) => f.type === 'error')).toMatchObject({ code: 'upstream_interrupted' });
    expect(frames.at(-1)).toMatchObject({ status: 'interrupted', content: text });
  });

  it.each([
    ['malformed', { malformedRate: 1 }, 'upstream_bad_response', 1],
    ['drop (500)', { dropRate: 1 }, 'upstream_unavailable', 2],
    ['rate limit (429)', { rateLimitRate: 1 }, 'upstream_rate_limited', 2],
    // A reset on a reused kept-alive socket is sent again at once on a new one (not a retry): 2 or 3.
    ['disconnect', { disconnectRate: 1 }, 'upstream_unavailable', 2],
  ])('chaos %s (%j) → %s after %s request(s), never an empty answer', async (_name, chaos, code, requests) => {
    mock.onMessage('chaos', { content: 'never seen' });
    mock.setChaos(chaos);
    try {
      const frames = await turn(app, 'chaos please');
      expect(frames.find((f) => f.type === 'error')).toMatchObject({ code });
      expect(frames.at(-1)).toMatchObject({ type: 'agent_response_end', status: 'error', content: '' });
      expect(tap.requests).toBeGreaterThanOrEqual(requests);
      expect(tap.requests).toBeLessThanOrEqual(requests + 1);
    } finally {
      mock.clearChaos();
    }
  });
});

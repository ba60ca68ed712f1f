/**
 * Keeps docs/providers.md honest: every recipe's `env` block validates, and the provider configured
 * from it streams an answer from the fake playing that kind of server, sending only what that
 * server understands.
 */
import { Logger } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { lastValueFrom, toArray } from 'rxjs';
import { AppError } from '../common/app-error';
import { type Dialect, FakeDeepSeek, OPENAI_FIELDS } from '../../test/fakes/deepseek.fake';
import { validateEnvironment } from '../config/environment';
import { DeepSeekProvider } from './deepseek.provider';
import { type LlmEvent, LlmSettings } from './llm.provider';
import { sendsThinkingField } from './openai-compat';

const DOC = readFileSync(join(__dirname, '../../docs/providers.md'), 'utf8');

/** `## Heading` → its first ```env block, as variables. */
function recipes(): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  for (const section of DOC.split(/^## /m).slice(1)) {
    const heading = section.split('\n', 1)[0].trim();
    const block = /```env\n([\s\S]*?)```/.exec(section);
    if (!block) continue;
    const vars: Record<string, string> = {};
    for (const line of block[1].split('\n')) {
      const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
      if (m) vars[m[1]] = m[2];
    }
    out.set(heading, vars);
  }
  return out;
}

/** The fake dialect that plays each server, and whether DeepSeek's `thinking` goes to it. */
const SERVERS: Array<[string, Dialect, boolean]> = [
  ['DeepSeek', 'deepseek', true],
  ['Ollama', 'ollama', false],
  ['vLLM', 'strict-openai', false],
  ['llama.cpp server', 'think-tags', false],
  ['OpenRouter', 'ollama', false],
];

describe('docs/providers.md recipes', () => {
  const all = recipes();
  let fake: FakeDeepSeek | undefined;
  beforeAll(() => Logger.overrideLogger(false));
  afterAll(() => Logger.overrideLogger(['log', 'error', 'warn', 'debug', 'verbose']));
  afterEach(async () => {
    await fake?.close();
    fake = undefined;
  });

  it('has a recipe for each server, and no other', () => {
    expect([...all.keys()].sort()).toEqual(SERVERS.map(([name]) => name).sort());
  });

  it.each(SERVERS)('%s', async (name, dialect, getsThinking) => {
    const vars = all.get(name)!;
    expect(vars).toEqual(
      expect.objectContaining({
        DEEPSEEK_BASE_URL: expect.stringMatching(/^https?:\/\//),
        DEEPSEEK_API_KEY: expect.any(String),
        DEEPSEEK_MODEL: expect.any(String),
        LLM_THINKING_FIELD: expect.stringMatching(/^(auto|deepseek|none)$/),
      }),
    );
    const env = validateEnvironment(vars);
    const real = new URL(env.DEEPSEEK_BASE_URL);
    // What the real server would get, decided from the real URL.
    expect(sendsThinkingField(env.LLM_THINKING_FIELD, env.DEEPSEEK_BASE_URL, env.DEEPSEEK_MODEL)).toBe(getsThinking);

    fake = await FakeDeepSeek.start({ dialect, apiKey: env.DEEPSEEK_API_KEY, models: [env.DEEPSEEK_MODEL] });
    const settings = Object.assign(new LlmSettings(), {
      apiKey: env.DEEPSEEK_API_KEY,
      // The fake's origin, the recipe's path.
      baseUrl: `${fake.baseUrl}${real.pathname.replace(/\/$/, '')}`,
      model: env.DEEPSEEK_MODEL,
      timeoutMs: 5_000,
      maxRetries: 0,
      retryBaseMs: 5,
      thinkingField: getsThinking ? 'deepseek' : env.LLM_THINKING_FIELD,
      reasoningEffort: env.LLM_REASONING_EFFORT,
    });
    const provider = new DeepSeekProvider(settings);
    fake.enqueue({ kind: 'stream', reasoning: ['Thinking it over.'], content: ['The ', 'answer.'] });
    const events: LlmEvent[] = await lastValueFrom(provider.stream({ messages: [{ role: 'user', content: 'hi' }], thinking: true }).pipe(toArray()));

    const text = (type: string) =>
      events
        .filter((e) => e.type === type)
        .map((e) => (e as { text: string }).text)
        .join('');
    expect(text('reasoning')).toBe('Thinking it over.');
    expect(text('content')).toBe('The answer.');
    expect(events.at(-1)).toMatchObject({ type: 'finish', complete: true });

    expect(fake.requests).toHaveLength(1);
    const req = fake.requests[0];
    expect(req.path).toBe(`${real.pathname.replace(/\/$/, '')}/chat/completions`);
    expect(req.body.model).toBe(env.DEEPSEEK_MODEL);
    expect('thinking' in req.body).toBe(getsThinking);
    if (!getsThinking) {
      for (const key of Object.keys(req.body)) expect(OPENAI_FIELDS).toContain(key);
    }
    expect(await provider.listModels()).toEqual([env.DEEPSEEK_MODEL]);
  });
});

/** The rows of "When a server answers oddly": what comes, and how it must show. */
function oddAnswers(): Array<{ server: string; status: number; type: string; body: string; shows: string }> {
  const section = DOC.split(/^## /m).find((s) => s.startsWith('When a server answers oddly'))!;
  const code = (cell: string) => /`([^`]*)`/.exec(cell)?.[1] ?? '';
  return section
    .split('\n')
    .filter((line) => line.startsWith('| ') && !line.startsWith('| server') && !line.startsWith('|---'))
    .map((line) => {
      const [server, statusType, sends, shows] = line.slice(2, -2).split(' | ');
      return {
        server,
        status: Number(/^\d+/.exec(statusType)![0]),
        type: code(statusType),
        body: code(sends)
          .replace(/\\n/g, '\n')
          .replace(/\\r/g, '\r')
          .replace(/\\uFEFF/g, '\uFEFF'),
        shows: code(shows),
      };
    });
}

describe('docs/providers.md: when a server answers oddly', () => {
  const rows = oddAnswers();
  let server: http.Server;
  let answer = rows[0];
  beforeAll(async () => {
    Logger.overrideLogger(false);
    server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(answer.status, { 'Content-Type': answer.type });
        res.end(answer.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  });
  afterAll(async () => {
    Logger.overrideLogger(['log', 'error', 'warn', 'debug', 'verbose']);
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('lists the known shapes', () => {
    expect(rows.length).toBeGreaterThanOrEqual(12);
    for (const row of rows) expect(row.shows).toMatch(/^(complete|upstream_[a-z_]+)$/);
  });

  it.each(rows.map((row) => [row.server, row] as const))('%s', async (_name, row) => {
    answer = row;
    const provider = new DeepSeekProvider(
      Object.assign(new LlmSettings(), {
        apiKey: 'test-key',
        baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
        model: 'm',
        timeoutMs: 5_000,
        maxRetries: 0,
        retryBaseMs: 1,
      }),
    );
    const events: LlmEvent[] = [];
    let error: unknown;
    await new Promise<void>((resolve) =>
      provider.stream({ messages: [{ role: 'user', content: 'hi' }] }).subscribe({
        next: (e) => events.push(e),
        error: (e: unknown) => ((error = e), resolve()),
        complete: () => resolve(),
      }),
    );
    if (row.shows === 'complete') {
      expect(error).toBeUndefined();
      expect(events.some((e) => e.type === 'content')).toBe(true);
      expect(events.at(-1)).toMatchObject({ type: 'finish', complete: true });
    } else {
      expect(error).toBeInstanceOf(AppError);
      expect((error as AppError).code).toBe(row.shows);
    }
  });
});

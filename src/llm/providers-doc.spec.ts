/**
 * Keeps docs/providers.md honest: every recipe's `env` block validates, and the provider configured
 * from it streams an answer from the fake playing that kind of server, sending only what that
 * server understands.
 */
import { Logger } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { lastValueFrom, toArray } from 'rxjs';
import { Dialect, FakeDeepSeek, OPENAI_FIELDS } from '../../test/fakes/deepseek.fake';
import { validateEnvironment } from '../config/environment';
import { DeepSeekProvider } from './deepseek.provider';
import { LlmEvent, LlmSettings } from './llm.provider';
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
    const events: LlmEvent[] = await lastValueFrom(
      provider.stream({ messages: [{ role: 'user', content: 'hi' }], thinking: true }).pipe(toArray()),
    );

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

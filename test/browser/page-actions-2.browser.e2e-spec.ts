/**
 * More of the chat page (issue 20), in real Chromium against the real server with FakeDeepSeek as
 * the model: "Retrying 2/4…" while the model request is retried, and the sidebar's usage line.
 */
import type { Page } from 'playwright-core';
import { FakeDeepSeek } from '../fakes/deepseek.fake';
import { ASSISTANT, BOX, browserSession } from '../support/browser';
import { RunningApp, startApp } from '../support/app';

jest.setTimeout(90_000);

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('chat page: retries, titles, sidebar in Chromium', () => {
  let fake: FakeDeepSeek;
  let app: RunningApp;
  const session = browserSession({ viewport: { width: 1000, height: 700 }, account: () => app.url });

  beforeAll(async () => {
    fake = await FakeDeepSeek.start();
    app = await startApp({
      AUTH_MODE: 'local',
      DEEPSEEK_BASE_URL: fake.baseUrl,
      DEEPSEEK_API_KEY: 'test-key',
      LLM_MAX_RETRIES: '3',
      LLM_RETRY_BASE_MS: '5',
    });
  });
  afterAll(async () => {
    await app?.close();
    await fake?.close();
  });

  const openChat = async (): Promise<Page> => {
    const page = await session.newPage();
    await page.goto(`${app.url}/chat`);
    await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
    return page;
  };
  const send = async (page: Page, text: string) => {
    await page.locator(BOX).fill(text);
    await page.keyboard.press('Enter');
  };

  it('"Retrying 3/4…" shows on the answer while the model request is retried, and goes with the first piece', async () => {
    const page = await openChat();
    const gate = deferred();
    fake.enqueue({ kind: 'error', status: 503 }, { kind: 'error', status: 429 }, { kind: 'stream', content: ['Back ', 'again'], gate: gate.promise });
    await send(page, 'Are you there?');
    const note = page.locator(`${ASSISTANT}[data-status="streaming"] [data-retry-note]`);
    await note.filter({ hasText: 'Retrying 3/4…' }).waitFor();
    expect(await note.getAttribute('role')).toBe('status');
    gate.resolve();
    await page.locator(`${ASSISTANT}[data-status="complete"] [data-content]`, { hasText: 'Back again' }).waitFor();
    expect(await page.locator('[data-retry-note]').count()).toBe(0);
    expect(await page.locator('[role=alert]:not(:empty)').count()).toBe(0);
  });
});

/**
 * More of the chat page (issue 20), in real Chromium against the real server with FakeDeepSeek as
 * the model: "Retrying 2/4…" while the model request is retried, a generated title replacing the
 * first line, the sidebar by date and its usage line.
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
      GENERATED_TITLES: 'true',
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

  it('a new chat shows its first line, then the generated title replaces it in the sidebar, the header and the tab', async () => {
    const page = await openChat();
    const gate = deferred();
    fake.enqueueTitle({ kind: 'stream', content: ['Sorting a list ', 'in Python'], gate: gate.promise });
    await send(page, 'How do I **sort** a list?\n```python\nxs = [3, 1, 2]\n```');
    await page.locator(`${ASSISTANT}[data-status="complete"]`).waitFor();
    const link = page.locator('[data-chat-list] a[href^="/chat/"]').first();
    // The answer is whole while the title is still being written: the first line, Markdown stripped.
    expect((await link.textContent())?.trim()).toBe('How do I sort a list?');
    gate.resolve();
    await page.locator('[data-chat-list] a', { hasText: 'Sorting a list in Python' }).waitFor();
    await page.waitForFunction(() => document.title.includes('Sorting a list in Python'));
    expect((await page.locator('[data-chat-title]').textContent())?.trim()).toBe('Sorting a list in Python');
    const href = await link.getAttribute('href');
    expect(page.url()).toContain(href!);
    // Stored: a reload shows it too.
    await page.reload();
    expect((await page.locator(`[data-chat-list] a[href="${href}"]`).textContent())?.trim()).toBe('Sorting a list in Python');
  });
});

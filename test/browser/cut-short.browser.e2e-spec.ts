/**
 * An answer the model cut short (finish_reason `length` / `content_filter`) says so under the
 * message, live and after a reload (the server renders the reason into the page); a whole answer
 * says nothing. Real Chromium, real server, FakeDeepSeek as the model.
 */
import { FakeDeepSeek } from '../fakes/deepseek.fake';
import { ASSISTANT, BOX, browserSession } from '../support/browser';
import { type RunningApp, startApp } from '../support/app';

jest.setTimeout(90_000);

describe('cut-short answers in Chromium', () => {
  let fake: FakeDeepSeek;
  let app: RunningApp;
  // Runs with accounts (the default AUTH_MODE=local): each test's context signs in through the login form.
  const session = browserSession({ viewport: { width: 1000, height: 700 }, account: () => app.url });

  beforeAll(async () => {
    fake = await FakeDeepSeek.start();
    app = await startApp({ AUTH_MODE: 'local', DEEPSEEK_BASE_URL: fake.baseUrl, DEEPSEEK_API_KEY: 'test-key' });
  });
  afterAll(async () => {
    await app?.close();
    await fake?.close();
  });

  it.each([
    ['length', 'Cut short: the answer reached its length limit'],
    ['content_filter', "Cut short by the model provider's content filter"],
  ])('finish_reason %s: a note under the answer, live and after a reload', async (reason, note) => {
    const page = await session.newPage();
    await page.goto(`${app.url}/chat`);
    await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
    fake.enqueue({ kind: 'stream', content: ['The first ', 'half'], finishReason: reason });
    await page.locator(BOX).fill('Write a long essay');
    await page.keyboard.press('Enter');
    const answer = page.locator(`${ASSISTANT}[data-status="complete"]`);
    await answer.waitFor();
    await page.waitForURL(/\/chat\/[0-9a-f-]{36}$/);
    expect(await answer.locator('[data-content]').textContent()).toContain('The first half');
    expect(await answer.locator('[data-status-note]').textContent()).toBe(note);

    await page.reload();
    const stored = page.locator(`${ASSISTANT}[data-status="complete"]`);
    await stored.locator('[data-status-note]').waitFor();
    expect(await stored.getAttribute('data-finish-reason')).toBe(reason);
    expect(await stored.locator('[data-status-note]').textContent()).toBe(note);
    await page.screenshot({ path: `/tmp/cut-short-${reason}.png` });

    // The shared read-only page says it too.
    await page.locator('[data-chat-menu] > summary').click();
    await page.locator('[data-share]').click();
    await page.waitForFunction(() => (document.querySelector('[data-share-url]') as HTMLInputElement | null)?.value.includes('/share/'));
    const shared = await session.newPage();
    await shared.goto(await page.locator('[data-share-url]').inputValue());
    await shared.locator(`${ASSISTANT} [data-status-note]`).waitFor();
    expect(await shared.locator(`${ASSISTANT} [data-status-note]`).textContent()).toBe(note);
  });

  it('a whole answer (finish_reason stop) has no note', async () => {
    const page = await session.newPage();
    await page.goto(`${app.url}/chat`);
    await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
    fake.enqueue({ kind: 'stream', content: ['All of it.'] });
    await page.locator(BOX).fill('Say it all');
    await page.keyboard.press('Enter');
    const answer = page.locator(`${ASSISTANT}[data-status="complete"]`);
    await answer.waitFor();
    await page.waitForURL(/\/chat\/[0-9a-f-]{36}$/);
    await page.reload();
    await page.locator(`${ASSISTANT}[data-status="complete"] [data-content]`).waitFor();
    expect(await page.locator('[data-status-note]').count()).toBe(0);
    expect(await page.locator(ASSISTANT).getAttribute('data-finish-reason')).toBe('stop');
  });
});

/**
 * Errors on the chat page are sentences (issue 20, item 8): a failed answer says what happened and
 * what to do in words, with the raw code and the server's message folded in a "Details" disclosure,
 * never a bare `(upstream_auth)`. Real Chromium, real server, FakeDeepSeek as the model. (The
 * Solver page's errors: solver.browser.e2e-spec.ts; a refused send: composer.browser.e2e-spec.ts.)
 */
import { FakeDeepSeek } from '../fakes/deepseek.fake';
import { ASSISTANT, browserSession, openChatPage, sendText } from '../support/browser';
import { type RunningApp, startApp } from '../support/app';

jest.setTimeout(90_000);

describe('chat page errors in words, in Chromium', () => {
  let fake: FakeDeepSeek;
  let app: RunningApp;
  const session = browserSession({ viewport: { width: 1280, height: 800 }, account: () => app.url, expectedConsole: /status of 4\d\d/ });

  beforeAll(async () => {
    fake = await FakeDeepSeek.start();
    app = await startApp({ AUTH_MODE: 'local', DEEPSEEK_BASE_URL: fake.baseUrl, DEEPSEEK_API_KEY: 'test-key', LLM_MAX_RETRIES: '0' });
  });
  afterAll(async () => {
    await app?.close();
    await fake?.close();
  });

  it.each([
    [401, 'upstream_auth', "The model service refused the server's API key. Whoever runs the server needs to check it."],
    [402, 'upstream_quota', 'The model account has run out of balance. Whoever runs the server needs to top it up.'],
  ])('a model that answers %i: a sentence on the answer, the code %s folded in Details', async (status, code, words) => {
    const page = await openChatPage(session, app.url);
    fake.enqueue({ kind: 'error', status, message: 'no entry' });
    await sendText(page, `Hello ${status}`);
    const answer = page.locator(`${ASSISTANT}[data-status="error"]`);
    await answer.waitFor();
    const error = page.locator('[data-message-error], [data-form-error]:not(:empty)').first();
    await error.waitFor();
    expect(await error.locator('[data-error-text]').textContent()).toBe(words);
    expect(await error.locator('[data-error-text]').textContent()).not.toMatch(/\(|_/);
    const details = error.locator('details[data-error-details]');
    expect(await details.evaluate((d) => (d as HTMLDetailsElement).open)).toBe(false);
    expect(await details.locator('summary').textContent()).toBe('Details');
    expect(await details.locator('code').textContent()).toMatch(new RegExp(`^${code}: `));
    // Folded, the code is not on screen; opened, it is.
    expect(await details.locator('code').isVisible()).toBe(false);
    await details.locator('summary').click();
    expect(await details.locator('code').isVisible()).toBe(true);
    // The box is usable again, the text of the failed turn is the chat's (it was stored).
    expect(await page.locator('form[data-chat-form] textarea').isEnabled()).toBe(true);
  });
});

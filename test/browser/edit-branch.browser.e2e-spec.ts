/**
 * Edit makes a branch (issue 20), in real Chromium against the real server (accounts, the default
 * AUTH_MODE=local) with FakeDeepSeek as the model: Edit opens a sent user message in place; Send
 * makes a new branch there (its answer streams after it, the model sees only the new branch); the
 * message shows ‹ 2/2 ›; ‹ shows the earlier text and the answers that followed it (read-only), ›
 * comes back; the same after a reload; by keyboard; axe finds nothing with the editor open or an
 * earlier version on show.
 */
import { source as axeSource } from 'axe-core';
import type { Page } from 'playwright-core';
import { FakeDeepSeek } from '../fakes/deepseek.fake';
import { ASSISTANT, BOX, browserSession, openChatPage, sendText, USER, UUID_PATH } from '../support/browser';
import { type RunningApp, startApp } from '../support/app';

jest.setTimeout(90_000);

/**
 * axe's violations on the page, one line each. The script goes in through DevTools, not the page's
 * CSP; the style elements axe adds while it checks colours are refused by that CSP, and those
 * reports (made during the run) are taken out of the page's record, which is checked after each test.
 */
async function axeViolations(page: Page): Promise<string[]> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource);
  return page.evaluate(async () => {
    const w = window as unknown as {
      __csp: string[];
      axe: { run: (ctx: Document, opts: object) => Promise<{ violations: { id: string; nodes: { target: string[] }[] }[] }> };
    };
    const before = w.__csp.length;
    const result = await w.axe.run(document, { resultTypes: ['violations'] });
    // Violation reports are events of their own: let the run's arrive first.
    await new Promise((resolve) => setTimeout(resolve, 100));
    w.__csp.length = before;
    return result.violations.map((v) => `${v.id} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  });
}

describe('Edit makes a branch, in Chromium', () => {
  let fake: FakeDeepSeek;
  let app: RunningApp;
  // axe adds style elements of its own, which the page's CSP refuses and says so in the console.
  const session = browserSession({ viewport: { width: 1000, height: 700 }, account: () => app.url, expectedConsole: /^Applying inline style violates/ });

  beforeAll(async () => {
    fake = await FakeDeepSeek.start();
    fake.setDefault((body: { messages: { role: string; content: string }[] }) => ({
      kind: 'stream',
      content: ['The answer to ', `“${body.messages[body.messages.length - 1].content}”.`],
    }));
    app = await startApp({ AUTH_MODE: 'local', DEEPSEEK_BASE_URL: fake.baseUrl, DEEPSEEK_API_KEY: 'test-key' });
  });
  afterAll(async () => {
    await app?.close();
    await fake?.close();
  });

  const answer = (page: Page, question: string) => page.locator(`${ASSISTANT}[data-status="complete"]`, { hasText: `The answer to “${question}”.` });
  const visibleTexts = (page: Page, selector: string) =>
    page
      .locator(`[data-messages] ${selector}`)
      .evaluateAll((els) => els.filter((e) => (e as HTMLElement).offsetParent !== null).map((e) => e.textContent?.trim() ?? ''));
  const modelSaw = () => (fake.requests[fake.requests.length - 1].body.messages as { role: string; content: string }[]).map((m) => m.content);

  /** What the reader sees of the chat: each shown message's role and text (actions left out). */
  const shown = (page: Page) =>
    page.locator('[data-messages] article.message').evaluateAll((els) =>
      els
        .filter((e) => (e as HTMLElement).offsetParent !== null)
        .map((e) => {
          const content = Array.from(e.querySelectorAll('.content')).find((c) => (c as HTMLElement).offsetParent !== null);
          return `${(e as HTMLElement).dataset.role}: ${content?.textContent?.trim() ?? ''}`;
        }),
    );

  it('edits a sent message into a new branch, switches to the earlier version and back, and keeps both after a reload', async () => {
    const page = await openChatPage(session, app.url);
    await sendText(page, 'What is 2+2?');
    await answer(page, 'What is 2+2?').waitFor();
    await page.waitForURL(UUID_PATH);
    await sendText(page, 'And 3+3?');
    await answer(page, 'And 3+3?').waitFor();

    // Edit opens the first message in place, its text ready to change; the composer is left alone.
    const first = page.locator(USER).first();
    await first.locator('[data-edit-message]').click();
    const editor = first.locator('[data-edit-text]');
    expect(await editor.inputValue()).toBe('What is 2+2?');
    expect(await editor.evaluate((el) => el === document.activeElement)).toBe(true);
    expect(await page.locator(BOX).inputValue()).toBe('');
    await page.screenshot({ path: '/tmp/edit-branch-editor.png' });
    expect(await axeViolations(page)).toEqual([]);
    // Esc cancels: the message reads as before, the keyboard back on Edit.
    await page.keyboard.press('Escape');
    await first.locator('[data-edit-text]').waitFor({ state: 'detached' });
    expect(await first.locator('[data-content]').textContent()).toBe('What is 2+2?');
    expect(await first.locator('[data-edit-message]').evaluate((el) => el === document.activeElement)).toBe(true);

    await first.locator('[data-edit-message]').click();
    await editor.fill('What is 5+5?');
    await first.locator('[data-edit-send]').click();
    await answer(page, 'What is 5+5?').waitFor();
    await page.screenshot({ path: '/tmp/edit-branch-new.png' });
    // The new branch takes the edited message's place: the old turns are gone from the chat shown.
    expect(await shown(page)).toEqual(['user: What is 5+5?', 'assistant: The answer to “What is 5+5?”.']);
    expect(modelSaw()).toEqual(['What is 5+5?']);
    const edited = page.locator(USER);
    const label = edited.locator('[data-version-label]');
    expect(await label.textContent()).toBe('2/2');

    // ‹ shows the earlier version: its text and the answers and turns that followed it, read-only.
    await edited.locator('[data-version-prev]').click();
    await page.locator('[data-earlier-note]').waitFor();
    expect(await label.textContent()).toBe('1/2');
    expect(await shown(page)).toEqual([
      'user: What is 2+2?',
      'assistant: The answer to “What is 2+2?”.',
      'user: And 3+3?',
      'assistant: The answer to “And 3+3?”.',
    ]);
    expect(await page.locator('.message-earlier [data-edit-message], .message-earlier [data-copy-message]').count()).toBe(0);
    await page.screenshot({ path: '/tmp/edit-branch-earlier.png' });
    expect(await axeViolations(page)).toEqual([]);
    // At the first version ‹ is disabled and the keyboard moved on to ›; Enter there comes back.
    expect(await edited.locator('[data-version-prev]').isDisabled()).toBe(true);
    expect(await edited.locator('[data-version-next]').evaluate((el) => el === document.activeElement)).toBe(true);
    await page.keyboard.press('Enter');
    await page.locator('[data-earlier-note]').waitFor({ state: 'detached' });
    expect(await label.textContent()).toBe('2/2');
    expect(await shown(page)).toEqual(['user: What is 5+5?', 'assistant: The answer to “What is 5+5?”.']);

    // A new turn follows the current branch only.
    await sendText(page, 'Double it');
    await answer(page, 'Double it').waitFor();
    expect(modelSaw()).toEqual(['What is 5+5?', 'The answer to “What is 5+5?”.', 'Double it']);

    // After a reload: the same chat, the switcher from the stored versions, the earlier branch a click away.
    await page.reload();
    await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
    expect(await shown(page)).toEqual([
      'user: What is 5+5?',
      'assistant: The answer to “What is 5+5?”.',
      'user: Double it',
      'assistant: The answer to “Double it”.',
    ]);
    const stored = page.locator(USER).first();
    expect(await stored.locator('[data-version-label]').textContent()).toBe('2/2');
    expect(await page.locator(USER).nth(1).locator('[data-versions]').count()).toBe(0);
    await stored.locator('[data-version-prev]').click();
    await page.locator('[data-earlier-note]').waitFor();
    expect(await shown(page)).toEqual([
      'user: What is 2+2?',
      'assistant: The answer to “What is 2+2?”.',
      'user: And 3+3?',
      'assistant: The answer to “And 3+3?”.',
    ]);
    expect(await visibleTexts(page, '[data-versions] [data-version-label]')).toEqual(['1/2']);
    await stored.locator('[data-version-next]').click();
    await page.locator('[data-earlier-note]').waitFor({ state: 'detached' });
    expect(await shown(page)).toEqual([
      'user: What is 5+5?',
      'assistant: The answer to “What is 5+5?”.',
      'user: Double it',
      'assistant: The answer to “Double it”.',
    ]);
  });

  it('on a phone in dark mode, the editor and an earlier version fit the screen and axe finds nothing', async () => {
    const context = await session.browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: 'dark', isMobile: true, hasTouch: true });
    try {
      await session.signIn(context);
      const page = await session.newPage(context);
      await page.goto(`${app.url}/chat`);
      await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
      await sendText(page, 'Short question');
      await answer(page, 'Short question').waitFor();
      await page.locator(`${USER} [data-edit-message]`).click();
      await page.locator('[data-edit-text]').fill('A longer question, edited on a phone');
      const box = await page.locator('[data-edit-box]').boundingBox();
      expect(box!.x).toBeGreaterThanOrEqual(0);
      expect(box!.x + box!.width).toBeLessThanOrEqual(390);
      expect(await axeViolations(page)).toEqual([]);
      await page.locator('[data-edit-send]').click();
      await answer(page, 'A longer question, edited on a phone').waitFor();
      await page.locator(`${USER} [data-version-prev]`).click();
      await page.locator('[data-earlier-note]').waitFor();
      expect(await shown(page)).toEqual(['user: Short question', 'assistant: The answer to “Short question”.']);
      await page.screenshot({ path: '/tmp/edit-branch-phone-dark.png' });
      expect(await axeViolations(page)).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('a refused edit leaves the chat as it was and the new text in the editor, with the reason in words', async () => {
    const page = await openChatPage(session, app.url);
    await sendText(page, 'Keep me');
    await answer(page, 'Keep me').waitFor();
    // The server no longer knows the message (as when another tab's edit replaced it meanwhile).
    await page.locator(USER).evaluate((el) => {
      (el as HTMLElement).dataset.messageId = '00000000-0000-4000-8000-000000000000';
    });
    await page.locator(`${USER} [data-edit-message]`).click();
    await page.locator('[data-edit-text]').fill('Changed text');
    await page.keyboard.press('Enter');
    await page.locator('[data-form-error]', { hasText: 'Not sent' }).waitFor();
    expect(await page.locator('[data-form-error]').textContent()).toContain('no such message in that chat');
    const editor = page.locator(`${USER} [data-edit-text]`);
    expect(await editor.inputValue()).toBe('Changed text');
    expect(await editor.evaluate((el) => el === document.activeElement)).toBe(true);
    // No copy of the refused text in the chat; the message and its answer are back.
    expect(await page.locator('[data-messages] article.message[data-status="sending"], [data-messages] article.message[data-client-id]').count()).toBe(0);
    expect(await page.locator(ASSISTANT).isVisible()).toBe(true);
    await page.keyboard.press('Escape');
    expect(await shown(page)).toEqual(['user: Keep me', 'assistant: The answer to “Keep me”.']);
  });

  it('a second tab sees the edit replace the branch; sending while an earlier version is shown returns to the current one', async () => {
    const page = await openChatPage(session, app.url);
    await sendText(page, 'Name a colour');
    await answer(page, 'Name a colour').waitFor();
    await page.waitForURL(UUID_PATH);
    const other = await session.newPage();
    await other.goto(page.url());
    await other.locator('[data-connection="connected"]').waitFor({ state: 'attached' });

    await page.locator(`${USER} [data-edit-message]`).click();
    await page.locator('[data-edit-text]').fill('Name a fruit');
    await page.keyboard.press('Enter');
    await answer(page, 'Name a fruit').waitFor();
    await answer(other, 'Name a fruit').waitFor();
    expect(await shown(other)).toEqual(['user: Name a fruit', 'assistant: The answer to “Name a fruit”.']);
    expect(await other.locator(`${USER} [data-version-label]`).textContent()).toBe('2/2');

    await page.locator(`${USER} [data-version-prev]`).click();
    await page.locator('[data-earlier-note]').waitFor();
    await sendText(page, 'Another one');
    await answer(page, 'Another one').waitFor();
    expect(await page.locator('[data-earlier-note]').count()).toBe(0);
    expect(await shown(page)).toEqual([
      'user: Name a fruit',
      'assistant: The answer to “Name a fruit”.',
      'user: Another one',
      'assistant: The answer to “Another one”.',
    ]);
    expect(modelSaw()).toEqual(['Name a fruit', 'The answer to “Name a fruit”.', 'Another one']);
  });
});

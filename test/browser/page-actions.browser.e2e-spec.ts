/**
 * The chat page's everyday actions (issue 20), in real Chromium against the real server with
 * FakeDeepSeek as the model: Copy on answers and user messages (read back from the clipboard),
 * Edit (in place, sent as a new branch), an answer's model/time/tokens on hover,
 * live thinking folded to "Thought for N s", Continue on an answer cut short at its length limit,
 * the jump-to-latest button, Esc to stop, and one "no API key" notice.
 */
import type { Page } from 'playwright-core';
import { deferred } from '../../src/common/deferred';
import { FakeDeepSeek } from '../fakes/deepseek.fake';
import { ASSISTANT, BOX, browserSession, openChatPage, sendText, USER } from '../support/browser';
import { type RunningApp, startApp } from '../support/app';

jest.setTimeout(90_000);

describe('chat page actions in Chromium', () => {
  let fake: FakeDeepSeek;
  let app: RunningApp;
  // Runs with accounts (the default AUTH_MODE=local): each test's context signs in through the login form.
  const session = browserSession({ viewport: { width: 1000, height: 700 }, account: () => app.url });

  beforeAll(async () => {
    fake = await FakeDeepSeek.start();
    app = await startApp({ AUTH_MODE: 'local', DEEPSEEK_BASE_URL: fake.baseUrl, DEEPSEEK_API_KEY: 'test-key', DEEPSEEK_MODEL: 'deepseek-chat' });
  });
  afterAll(async () => {
    await app?.close();
    await fake?.close();
  });

  const openChat = (): Promise<Page> => openChatPage(session, app.url);
  const send = sendText;
  const clipboard = (page: Page) => page.evaluate(() => navigator.clipboard.readText());

  it('Copy puts an answer and a user message on the clipboard; the answer shows its model, time and tokens on hover', async () => {
    await session.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: app.url });
    const page = await openChat();
    fake.enqueue({ kind: 'stream', content: ['Here is **bold** text\n\n', '```js\nconst a = 1;\n```'] });
    await send(page, 'Show me *markdown*');
    const answer = page.locator(`${ASSISTANT}[data-status="complete"]`);
    await answer.locator('[data-copy-message]').waitFor();

    await answer.locator('[data-copy-message]').click();
    await answer.locator('[data-copy-message][data-copy-state="copied"]').waitFor();
    // The answer's Markdown as the model wrote it.
    expect(await clipboard(page)).toBe('Here is **bold** text\n\n```js\nconst a = 1;\n```');

    const user = page.locator(USER);
    await user.locator('[data-copy-message]').click();
    await user.locator('[data-copy-message][data-copy-state="copied"]').waitFor();
    expect(await clipboard(page)).toBe('Show me *markdown*');

    // Details of the answer: hidden until the answer is hovered, then model · time · tokens.
    const meta = answer.locator('[data-message-meta]');
    await page.mouse.move(5, 5);
    expect(await meta.isVisible()).toBe(false);
    await answer.hover();
    await meta.waitFor({ state: 'visible' });
    await page.screenshot({ path: '/tmp/page-actions-meta.png' });
    expect(await meta.textContent()).toMatch(/^deepseek-chat · \d+(\.\d)? s · \d+ tokens \(\d+ in, \d+ out\)$/);

    // After a reload the stored answer still names its model, time and tokens, and can be copied.
    const live = await meta.textContent();
    await page.reload();
    const stored = page.locator(`${ASSISTANT}[data-status="complete"]`);
    await stored.hover();
    await stored.locator('[data-message-meta]').waitFor({ state: 'visible' });
    const after = await stored.locator('[data-message-meta]').textContent();
    expect(after).toMatch(/^deepseek-chat · \d+(\.\d)? s · \d+ tokens \(\d+ in, \d+ out\)$/);
    // The same tokens as live (the time is the stored answer's, from its request to its end).
    expect(after!.replace(/ · [\d.]+ s/, '')).toBe(live!.replace(/ · [\d.]+ s/, ''));
    await stored.locator('[data-copy-message]').click();
    await stored.locator('[data-copy-message][data-copy-state="copied"]').waitFor();
    expect(await clipboard(page)).toBe('Here is **bold** text\n\n```js\nconst a = 1;\n```');
  });

  it('Edit opens a sent message in place; sending it makes a new branch there (edit-branch.browser.e2e-spec.ts has the rest)', async () => {
    const page = await openChat();
    fake.enqueue({ kind: 'stream', content: ['First answer.'] });
    await send(page, 'What is 2+2?');
    await page.locator(`${ASSISTANT}[data-status="complete"]`).waitFor();

    await page.locator(`${USER} [data-edit-message]`).click();
    const editor = page.locator(`${USER} [data-edit-text]`);
    expect(await editor.inputValue()).toBe('What is 2+2?');
    expect(await editor.evaluate((el) => el === document.activeElement)).toBe(true);
    expect(await page.locator(BOX).inputValue()).toBe('');
    await editor.fill('What is 3+3?');
    fake.enqueue({ kind: 'stream', content: ['Six.'] });
    await page.keyboard.press('Enter');
    await page.locator(`${ASSISTANT}[data-status="complete"]`, { hasText: 'Six.' }).waitFor();
    // The edited message's place: one user message, its switcher at 2/2.
    expect(await page.locator(USER).allTextContents()).toEqual([expect.stringContaining('What is 3+3?')]);
    expect(await page.locator(`${USER} [data-version-label]`).textContent()).toBe('2/2');
    // The model saw the edited text alone.
    const last = fake.requests[fake.requests.length - 1].body.messages;
    expect(last).toEqual([{ role: 'user', content: 'What is 3+3?' }]);
  });

  it('live thinking: the reasoning streams in an open block before the answer, then folds to "Thought for N s"', async () => {
    const page = await openChat();
    const answerGate = deferred();
    // Two reasoning pieces, then a pause before the first content piece (index 2).
    fake.enqueue({ kind: 'stream', reasoning: ['Let me weigh ', 'the options.'], content: ['Pick ', 'B.'], pauseAt: { piece: 2, gate: answerGate.promise } });
    await send(page, 'A or B?');
    const answer = page.locator(ASSISTANT);
    const details = answer.locator('details[data-reasoning]');
    await answer.locator('[data-reasoning-text]', { hasText: 'Let me weigh the options.' }).waitFor({ state: 'visible' });
    expect(await details.evaluate((d) => (d as HTMLDetailsElement).open)).toBe(true);
    expect(await answer.locator('[data-reasoning-summary]').textContent()).toBe('Thinking…');
    await page.screenshot({ path: '/tmp/page-actions-thinking.png' });
    expect(await answer.getAttribute('data-status')).toBe('streaming');
    expect((await answer.locator('[data-content]').textContent())?.trim()).toBe('');

    answerGate.resolve();
    await page.locator(`${ASSISTANT}[data-status="complete"]`).waitFor();
    expect(await answer.locator('[data-content]').textContent()).toContain('Pick B.');
    expect(await answer.locator('[data-reasoning-summary]').textContent()).toMatch(/^Thought for \d+ s$/);
    expect(await details.evaluate((d) => (d as HTMLDetailsElement).open)).toBe(false);
    expect(await answer.locator('[data-reasoning-text]').isVisible()).toBe(false);
  });

  it('Continue on an answer cut short at the length limit sends "Continue" as a new turn', async () => {
    const page = await openChat();
    fake.enqueue({ kind: 'stream', content: ['The first half'], finishReason: 'length' });
    await send(page, 'Write a long essay');
    const first = page.locator(`${ASSISTANT}[data-status="complete"]`);
    await first.locator('[data-continue]').waitFor();
    await page.screenshot({ path: '/tmp/page-actions-continue.png' });
    fake.enqueue({ kind: 'stream', content: [' and the second half.'] });
    await first.locator('[data-continue]').click();
    await page.locator(`${ASSISTANT}[data-status="complete"]`, { hasText: 'the second half.' }).waitFor();
    expect(await page.locator(USER).last().locator('[data-content]').textContent()).toBe('Continue');
    // The new answer is whole (finish_reason stop): no Continue anywhere now.
    expect(await page.locator('[data-continue]').count()).toBe(0);
    const messages = fake.requests[fake.requests.length - 1].body.messages;
    expect(messages.slice(-3)).toEqual([
      expect.objectContaining({ role: 'user', content: 'Write a long essay' }),
      expect.objectContaining({ role: 'assistant', content: 'The first half' }),
      expect.objectContaining({ role: 'user', content: 'Continue' }),
    ]);
    // The box was left alone.
    expect(await page.locator(BOX).inputValue()).toBe('');
  });

  it('jump to latest: "↓" shows while scrolled up during a stream, marks new text, and scrolls to the bottom', async () => {
    const page = await openChat();
    const paragraphs = Array.from({ length: 40 }, (_, i) => `Paragraph ${i + 1} of a long answer.\n\n`);
    const more = deferred();
    fake.enqueue({ kind: 'stream', content: paragraphs, delayMs: 5, pauseAt: { piece: 30, gate: more.promise } });
    await send(page, 'Tell me a lot');
    const answer = page.locator(ASSISTANT);
    await answer.locator('[data-content]', { hasText: 'Paragraph 30 of' }).waitFor();
    const jump = page.locator('[data-jump-latest]');
    expect(await jump.isVisible()).toBe(false);

    await page.locator('[data-messages]').evaluate((el) => el.scrollTo({ top: 0 }));
    await jump.waitFor({ state: 'visible' });
    expect(await jump.getAttribute('data-new-text')).toBeNull();
    more.resolve();
    await page.locator('[data-jump-latest][data-new-text]').waitFor();
    await page.screenshot({ path: '/tmp/page-actions-jump.png' });
    await page.locator(`${ASSISTANT}[data-status="complete"]`).waitFor();
    // Still where the reader left it.
    expect(await page.locator('[data-messages]').evaluate((el) => el.scrollTop)).toBe(0);

    await jump.click();
    await jump.waitFor({ state: 'hidden' });
    const gap = await page.locator('[data-messages]').evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight);
    expect(gap).toBeLessThan(2);
  });

  it('Esc stops a streaming answer', async () => {
    const page = await openChat();
    const never = deferred();
    fake.enqueue({ kind: 'stream', content: ['Started ', 'and then more'], pauseAt: { piece: 1, gate: never.promise } });
    await send(page, 'Go on forever');
    await page.locator(`${ASSISTANT}[data-status="streaming"] [data-content]`, { hasText: 'Started' }).waitFor();
    await page.locator('[data-stop]').waitFor({ state: 'visible' });
    await page.keyboard.press('Escape');
    await page.locator(`${ASSISTANT}[data-status="stopped"]`).waitFor();
    expect(await page.locator('[data-stop]').isVisible()).toBe(false);
    never.resolve();
  });
});

describe('no API key in Chromium', () => {
  let app: RunningApp;
  const session = browserSession({ viewport: { width: 1000, height: 700 }, account: () => app.url });

  beforeAll(async () => {
    // No DEEPSEEK_API_KEY.
    app = await startApp({ AUTH_MODE: 'local' });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('one notice: sending leaves no unanswered message and no second error, and keeps the text', async () => {
    const page = await session.newPage();
    await page.goto(`${app.url}/chat`);
    await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
    const notice = page.locator('[data-model-notice]');
    expect(await notice.count()).toBe(1);
    await page.locator(BOX).fill('Hello?');
    await page.keyboard.press('Enter');
    await notice.locator('[data-model-notice-kept]').waitFor();
    await page.screenshot({ path: '/tmp/page-actions-no-key.png' });
    expect(await notice.textContent()).toContain('Your message was not sent; it is still in the box.');
    expect(await page.locator(BOX).inputValue()).toBe('Hello?');
    expect(await page.locator('[data-message-id], [data-role]').count()).toBe(0);
    expect((await page.locator('[data-form-error]').textContent())?.trim()).toBe('');
    expect(await page.locator('[role=alert]:not(:empty)').count()).toBe(0);
    // Nothing was stored either: the chat list is still empty after a reload.
    await page.reload();
    expect(await page.locator('[data-chat-list] a').count()).toBe(0);
    expect(await page.locator('[data-model-notice]').count()).toBe(1);
  });
});

/**
 * The README's screenshots, made on demand (`npm run screenshots`; not part of `npm test`): the chat
 * page on a desktop (1280×800) and a phone (390×844), light and dark, into docs/screenshots/. Real
 * server, real Chromium, FakeDeepSeek as the model; one account ("ada") with a few chats, the shown
 * one with folded thinking, Markdown and a code block. Phone shots also show the drawer open.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { FakeDeepSeek } from '../fakes/deepseek.fake';
import { ASSISTANT, launchChromium, sendText, signInThroughForm, UUID_PATH } from '../support/browser';
import { type RunningApp, startApp } from '../support/app';

const OUT = join(__dirname, '..', '..', 'docs', 'screenshots');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

describe('screenshots for the README', () => {
  let fake: FakeDeepSeek;
  let app: RunningApp;
  let browser: Browser;
  let chatPath = '';

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    fake = await FakeDeepSeek.start();
    app = await startApp({ AUTH_MODE: 'local', DEEPSEEK_BASE_URL: fake.baseUrl, DEEPSEEK_API_KEY: 'test-key', GENERATED_TITLES: 'true' });
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: DESKTOP });
    await signInThroughForm(context, app.url, 'ada', 'signup');
    const page = await context.newPage();
    const ask = async (text: string, title: string, content: string[], reasoning?: string[]) => {
      await page.goto(`${app.url}/chat`);
      await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
      fake.enqueueTitle({ kind: 'stream', content: [title] });
      fake.enqueue({ kind: 'stream', content, ...(reasoning ? { reasoning } : {}) });
      await sendText(page, text);
      await page.waitForURL(UUID_PATH);
      await page.locator(`${ASSISTANT}[data-status="complete"]`).waitFor();
      await page.locator('[data-chat-list] a', { hasText: title }).waitFor();
    };
    await ask('Plan a three-day trip to Lisbon', 'Three days in Lisbon', ['Day 1: Alfama and the castle. Day 2: Belém. Day 3: Sintra.']);
    await ask('What does HTTPS protect?', 'What HTTPS protects', ['It encrypts the connection and proves the server is who it claims to be.']);
    await ask(
      'Write a Python function that removes duplicates from a list and keeps the order.',
      'Deduplicating a list in Python',
      [
        'A `dict` keeps insertion order (Python 3.7+), so its keys are the list without repeats:\n\n',
        '```python\ndef unique(items):\n    """Items in their first order, each once."""\n    return list(dict.fromkeys(items))\n\n\nprint(unique([3, 1, 3, 2, 1]))  # [3, 1, 2]\n```\n\n',
        'It runs in **O(n)** and works for any hashable items. For unhashable ones (lists, dicts), keep a `seen` list instead.',
      ],
      ['The user wants order kept. ', 'dict.fromkeys does that in one line.'],
    );
    chatPath = new URL(page.url()).pathname;
    await context.close();
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await fake?.close();
  });

  /** The chat on a fresh signed-in page, settled (rendered, connected, usage line filled, no caret). */
  const open = async (size: { width: number; height: number }, scheme: 'light' | 'dark'): Promise<Page> => {
    const phone = size.width < 500;
    const context = await browser.newContext({
      viewport: size,
      colorScheme: scheme,
      isMobile: phone,
      hasTouch: phone,
      deviceScaleFactor: 1,
      reducedMotion: 'reduce',
    });
    await signInThroughForm(context, app.url, 'ada');
    const page = await context.newPage();
    await page.goto(`${app.url}${chatPath}`);
    await page.locator(`${ASSISTANT} .code-block`).waitFor();
    await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
    await page
      .locator('aside [data-usage]')
      .filter({ hasText: /answers?$/ })
      .waitFor({ state: 'attached' });
    await page.locator('[data-message-tools]').first().waitFor({ state: 'attached' });
    // The caret blinks in the box: out of it, so every shot is the same.
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    return page;
  };

  it.each(['light', 'dark'] as const)('desktop, %s', async (scheme) => {
    const page = await open(DESKTOP, scheme);
    await page.screenshot({ path: join(OUT, `desktop-${scheme}.png`) });
    await page.context().close();
  });

  it.each(['light', 'dark'] as const)('phone, %s (and the drawer open)', async (scheme) => {
    const page = await open(PHONE, scheme);
    await page.screenshot({ path: join(OUT, `phone-${scheme}.png`) });
    await page.locator('[data-sidebar-toggle]').click();
    await page.waitForFunction(() => document.querySelector('aside.sidebar')!.getBoundingClientRect().left === 0);
    await page.screenshot({ path: join(OUT, `phone-${scheme}-drawer.png`) });
    await page.context().close();
  });
});

/**
 * The chat page in a real Chromium (Debian's package, driven by playwright-core): real clicks and
 * keys against the real server, with the model played by FakeDeepSeek. Finds things only by the
 * page hooks of PROTOCOL.md.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Browser, BrowserContext, chromium, Page } from 'playwright-core';
import { FakeDeepSeek } from '../fakes/deepseek.fake';
import { startApp } from '../support/app';

const CHROMIUM = '/usr/bin/chromium';
const UUID_PATH = /\/chat\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const BOX = 'form[data-chat-form] textarea[name=content]';
const ASSISTANT = '[data-message-id][data-role="assistant"]';
const USER = '[data-message-id][data-role="user"]';

jest.setTimeout(90_000);

describe('chat page in Chromium', () => {
  let fake: FakeDeepSeek;
  let app: Awaited<ReturnType<typeof startApp>>;
  let browser: Browser;
  let context: BrowserContext;
  let dataDir: string;
  /** Uncaught page errors and console errors (CSP violations show up here), per test. */
  let problems: string[];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `Chromium is missing at ${CHROMIUM}. The browser tests need Debian's package: ` +
          'run `apt-get update && apt-get install -y chromium` (CI installs it).',
      );
    }
    dataDir = mkdtempSync(join(tmpdir(), 'chat-browser-'));
    fake = await FakeDeepSeek.start();
    app = await startApp({
      DEEPSEEK_BASE_URL: fake.baseUrl,
      DEEPSEEK_API_KEY: 'test-key',
      DATABASE_URL: `sqlite:${join(dataDir, 'chat.db')}`,
      AUTH_MODE: 'none',
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await fake?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    problems = [];
    context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  });

  afterEach(async () => {
    await context?.close();
  });

  async function openPage(path: string): Promise<Page> {
    const page = await context.newPage();
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && !msg.location().url.includes('favicon')) problems.push(`console: ${msg.text()}`);
    });
    await page.goto(app.url + path);
    await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
    return page;
  }

  /** Types into the message box with real keys and presses Enter. */
  async function ask(page: Page, text: string): Promise<void> {
    await page.locator(BOX).click();
    await page.keyboard.type(text);
    await page.keyboard.press('Enter');
  }

  /** Waits until the answer being streamed shows `text`. */
  async function streamingShows(page: Page, text: string): Promise<void> {
    await page.waitForFunction(
      (t) => !!document.querySelector('[data-role="assistant"][data-status="streaming"] [data-content]')?.textContent?.includes(t),
      text,
    );
  }

  function lastAssistant(page: Page) {
    return page.locator(ASSISTANT).last();
  }

  it('streams an answer into a new chat, keeps it across reload, and swaps chats with HTMX', async () => {
    const page = await openPage('/chat');
    expect(await page.locator('#chat-content').getAttribute('data-chat-id')).toBe('');

    // Shift+Enter is a new line, not a send.
    await page.locator(BOX).click();
    await page.keyboard.type('line one');
    await page.keyboard.press('Shift+Enter');
    await page.keyboard.type('line two');
    expect(await page.locator(BOX).inputValue()).toBe('line one\nline two');
    expect(await page.locator('[data-message-id]').count()).toBe(0);
    await page.locator(BOX).fill('');

    fake.enqueue({
      kind: 'stream',
      reasoning: ['Thinking ', 'it over.'],
      content: ['Here ', 'is ', '**', 'bo', 'ld', '**', ' text', ' and', ' more', '.'],
      delayMs: 80,
    });
    await ask(page, 'Show me bold');

    await page.waitForURL(UUID_PATH);
    const chatId = new URL(page.url()).pathname.split('/').pop()!;
    expect(await page.locator('#chat-content').getAttribute('data-chat-id')).toBe(chatId);

    const user = page.locator(`${USER}[data-status="complete"]`);
    await user.waitFor();
    expect(await user.count()).toBe(1);
    expect((await user.locator('[data-content]').textContent())?.trim()).toBe('Show me bold');

    // While the answer streams: the box and Send are disabled, Stop shows.
    await page.locator(`${ASSISTANT}[data-status="streaming"]`).waitFor();
    expect(await page.locator(BOX).isDisabled()).toBe(true);
    expect(await page.locator('[data-send]').isDisabled()).toBe(true);
    expect(await page.locator('[data-stop]').isVisible()).toBe(true);

    await page.locator(`${ASSISTANT}[data-status="complete"]`).waitFor();
    const answer = lastAssistant(page);
    expect((await answer.locator('[data-content]').textContent())?.trim()).toBe('Here is bold text and more.');
    expect(await answer.locator('[data-content] strong').textContent()).toBe('bold');
    expect(Number(await answer.getAttribute('data-seq'))).toBeGreaterThanOrEqual(10);
    expect((await answer.locator('details[data-reasoning]').textContent())?.includes('Thinking it over.')).toBe(true);
    expect(await answer.locator('details[data-reasoning]').evaluate((d) => (d as HTMLDetailsElement).open)).toBe(false);

    // The box is usable again and has the focus; Stop is gone.
    expect(await page.locator(BOX).isEnabled()).toBe(true);
    expect(await page.locator('[data-send]').isEnabled()).toBe(true);
    expect(await page.locator('[data-stop]').isVisible()).toBe(false);
    expect(await page.locator(BOX).evaluate((el) => el === document.activeElement)).toBe(true);
    await page.waitForFunction(() => /Here is bold/.test(document.querySelector('[data-announcer]')?.textContent ?? ''));

    // The new chat is listed in the sidebar.
    await page.locator(`[data-chat-list] a[href="/chat/${chatId}"]`).waitFor();

    // A reload shows the history as stored, rendered the same way.
    await page.reload();
    await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
    expect(await page.locator(`${USER}[data-status="complete"]`).count()).toBe(1);
    const stored = page.locator(`${ASSISTANT}[data-status="complete"]`);
    expect(await stored.count()).toBe(1);
    expect(await stored.locator('[data-content] strong').textContent()).toBe('bold');
    expect((await stored.locator('[data-content]').textContent())?.trim()).toBe('Here is bold text and more.');
    expect(await stored.locator('details[data-reasoning]').count()).toBe(1);
    expect(await page.locator(`[data-chat-list] a[href="/chat/${chatId}"]`).count()).toBe(1);
    await page.screenshot({ path: '/tmp/chat.png' });

    // "New chat", then the chat in the sidebar: HTMX swaps, no full page load.
    await page.evaluate(() => ((window as unknown as { __noReload: number }).__noReload = 42));
    await page.locator('[data-new-chat]').click();
    await page.waitForURL(/\/chat$/);
    await page.waitForFunction(() => document.querySelector('#chat-content')?.getAttribute('data-chat-id') === '');
    expect(await page.locator('[data-message-id]').count()).toBe(0);

    await page.locator(`[data-chat-list] a[href="/chat/${chatId}"]`).click();
    await page.waitForURL(UUID_PATH);
    await page.locator(`${ASSISTANT}[data-status="complete"] [data-content] strong`).waitFor();
    expect(await page.locator(`${USER}`).count()).toBe(1);
    expect(await page.evaluate(() => (window as unknown as { __noReload?: number }).__noReload)).toBe(42);

    // The swapped-in chat is live: a follow-up streams into it (default answer: "Echo: …").
    await ask(page, 'and again');
    await page.waitForFunction(
      () => document.querySelectorAll('[data-role="assistant"][data-status="complete"]').length === 2,
    );
    expect((await lastAssistant(page).locator('[data-content]').textContent())?.trim()).toBe('Echo: and again');
    expect(page.url()).toMatch(new RegExp(`/chat/${chatId}$`));
    expect(await page.locator(`[data-chat-list] a[href="/chat/${chatId}"]`).count()).toBe(1);

    // Back and forward go through htmx history, still without a full load.
    await page.goBack();
    await page.waitForURL(/\/chat$/);
    await page.waitForFunction(() => document.querySelector('#chat-content')?.getAttribute('data-chat-id') === '');
    await page.goForward();
    await page.waitForURL(UUID_PATH);
    await page.waitForFunction(
      () => document.querySelectorAll('[data-role="assistant"][data-status="complete"] [data-content] strong').length === 1,
    );
    expect(await page.evaluate(() => (window as unknown as { __noReload?: number }).__noReload)).toBe(42);
    await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });

    expect(problems).toEqual([]);
  });

  it('shows the connection state, following the browser going offline and online', async () => {
    const page = await openPage('/chat');
    await context.setOffline(true);
    await page.locator('[data-connection="offline"]').waitFor({ state: 'attached' });
    await context.setOffline(false);
    await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
    expect(problems).toEqual([]);
  });

  it('reconnects after the socket drops and finishes the answer it was showing', async () => {
    const sockets: import('node:net').Socket[] = [];
    const server = app.app.getHttpServer() as import('node:http').Server;
    const track = (_req: unknown, socket: import('node:net').Socket) => sockets.push(socket);
    server.on('upgrade', track);
    try {
      const page = await openPage('/chat');
      const pieces = Array.from({ length: 16 }, (_, i) => `r${i} `);
      fake.enqueue({ kind: 'stream', content: pieces, delayMs: 120 });
      await ask(page, 'Keep going');
      await streamingShows(page, 'r3');
      for (const socket of sockets.splice(0)) socket.destroy();
      await page.locator('[data-connection="connecting"]').waitFor({ state: 'attached' });
      await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
      await page.locator(`${ASSISTANT}[data-status="complete"]`).waitFor();
      expect((await lastAssistant(page).locator('[data-content]').textContent())?.trim()).toBe(pieces.join('').trim());
      expect(problems).toEqual([]);
    } finally {
      server.off('upgrade', track);
    }
  });

  it('Stop ends the answer and keeps the text so far', async () => {
    const page = await openPage('/chat');
    const pieces = Array.from({ length: 40 }, (_, i) => `w${i} `);
    fake.enqueue({ kind: 'stream', content: pieces, delayMs: 100 });
    await ask(page, 'Talk for a while');
    await streamingShows(page, 'w2');
    await page.locator('[data-stop]').click();
    await page.locator(`${ASSISTANT}[data-status="stopped"]`).waitFor();
    const text = (await lastAssistant(page).locator('[data-content]').textContent())?.trim() ?? '';
    expect(text.startsWith('w0 w1 w2')).toBe(true);
    expect(text.length).toBeLessThan(pieces.join('').trim().length);
    expect(await page.locator(BOX).isEnabled()).toBe(true);
    expect(await page.locator('[data-stop]').isVisible()).toBe(false);
    expect(problems).toEqual([]);
  });

  it('picks a streaming answer up again after a reload, without gaps or repeats', async () => {
    const page = await openPage('/chat');
    const pieces = Array.from({ length: 16 }, (_, i) => `p${i} `);
    fake.enqueue({ kind: 'stream', content: pieces, delayMs: 120 });
    await ask(page, 'Count slowly');
    await page.waitForURL(UUID_PATH);
    await streamingShows(page, 'p3');
    await page.reload();
    await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
    await page.locator(`${ASSISTANT}[data-status="complete"]`).waitFor();
    expect((await lastAssistant(page).locator('[data-content]').textContent())?.trim()).toBe(pieces.join('').trim());
    expect(await page.locator(BOX).isEnabled()).toBe(true);
    expect(problems).toEqual([]);
  });

  it('sanitizes Markdown from the model, streamed and stored alike', async () => {
    const page = await openPage('/chat');
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });

    fake.enqueue({
      kind: 'stream',
      content: ['Look <img src=x onerror=alert(1)> ', '[x](javascript:alert(1)) ', 'and [ok](https://example.com/a).'],
    });
    await ask(page, 'Try <b>tags</b>');
    await page.waitForURL(UUID_PATH);
    await page.locator(`${ASSISTANT}[data-status="complete"]`).waitFor();

    // The user's own text is shown as written, never as HTML.
    expect(await page.locator(`${USER} [data-content] b`).count()).toBe(0);
    expect((await page.locator(`${USER} [data-content]`).textContent())?.trim()).toBe('Try <b>tags</b>');

    const check = async () => {
      const content = page.locator(`${ASSISTANT} [data-content]`);
      expect(await content.locator('img, script, iframe, [onerror]').count()).toBe(0);
      const x = content.locator('a', { hasText: /^x$/ });
      expect(await x.count()).toBe(1);
      expect((await x.getAttribute('href')) ?? '').not.toMatch(/^\s*javascript:/i);
      const ok = content.locator('a', { hasText: 'ok' });
      expect(await ok.getAttribute('href')).toBe('https://example.com/a');
      expect(await ok.getAttribute('target')).toBe('_blank');
      expect(await ok.getAttribute('rel')).toBe('noopener noreferrer');
      // No element anywhere in the answer carries an event handler or a script URL.
      const bad = await content.evaluateAll((roots) =>
        roots.flatMap((root) =>
          [root, ...Array.from(root.querySelectorAll('*'))].flatMap((el) =>
            Array.from(el.attributes)
              .filter((a) => /^on/i.test(a.name) || /^\s*javascript:/i.test(a.value))
              .map((a) => `${el.tagName} ${a.name}=${a.value}`),
          ),
        ),
      );
      expect(bad).toEqual([]);
    };
    await check();

    await page.reload();
    await page.locator(`${ASSISTANT}[data-status="complete"] [data-content][data-md="rendered"]`).waitFor();
    await check();

    expect(dialogs).toEqual([]);
    expect(problems).toEqual([]);
  });
});

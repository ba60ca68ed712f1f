/**
 * The chat page on a phone (issue 20, item 9), 390×844 in real Chromium against the real server
 * with FakeDeepSeek as the model: one top bar (the chat's header: menu button, title, the chat's
 * actions behind one menu button), the chat list as a drawer that slides in from the left, and at
 * least 75% of the screen's height left for the messages. The Solver page opens the same drawer.
 */
import type { BrowserContext, Page } from 'playwright-core';
import { FakeDeepSeek } from '../fakes/deepseek.fake';
import { ASSISTANT, browserSession, cspViolations, sendText, UUID_PATH } from '../support/browser';
import { type RunningApp, startApp } from '../support/app';

jest.setTimeout(90_000);

const PHONE = { width: 390, height: 844 };

describe('chat page on a phone in Chromium', () => {
  let fake: FakeDeepSeek;
  let app: RunningApp;
  const session = browserSession({ viewport: PHONE, account: () => app.url });

  beforeAll(async () => {
    fake = await FakeDeepSeek.start();
    app = await startApp({ AUTH_MODE: 'local', DEEPSEEK_BASE_URL: fake.baseUrl, DEEPSEEK_API_KEY: 'test-key' });
  });
  afterAll(async () => {
    await app?.close();
    await fake?.close();
  });

  /** A phone context (touch, mobile viewport) signed in as the suite's user. */
  const phone = async (): Promise<BrowserContext> => {
    const context = await session.browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true });
    await session.signIn(context);
    return context;
  };

  /** Boxes of what is on screen: every visible bar-like block at the top, the messages, the composer. */
  const layout = (page: Page) =>
    page.evaluate(() => {
      const box = (sel: string) => {
        const el = document.querySelector(sel);
        if (!el) return null;
        const r = el.getBoundingClientRect();
        const cs = getComputedStyle(el);
        return {
          top: r.top,
          bottom: r.bottom,
          left: r.left,
          right: r.right,
          height: r.height,
          shown: cs.visibility !== 'hidden' && cs.display !== 'none' && r.right > 0,
        };
      };
      return {
        header: box('.chat-header'),
        sidebar: box('aside.sidebar'),
        sidebarTop: box('.sidebar-top'),
        messages: box('[data-messages]'),
        composer: box('.composer'),
        scrollWidth: document.scrollingElement!.scrollWidth,
      };
    });

  it('one top bar, the list in a drawer, chat actions behind a menu, and 75% of the height for the messages', async () => {
    const context = await phone();
    try {
      const page = await session.newPage(context);
      await page.goto(`${app.url}/chat`);
      await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
      fake.enqueue({ kind: 'stream', content: ['A short answer ', 'with `code`.\n\n```js\nconst x = 1;\n```\n'] });
      await sendText(page, 'Hello from a phone');
      await page.waitForURL(UUID_PATH);
      await page.locator(`${ASSISTANT}[data-status="complete"]`).waitFor();

      let l = await layout(page);
      // One bar at the top: the chat's header; the sidebar (and its own top bar) is off screen.
      expect(l.header!.top).toBe(0);
      expect(l.sidebar!.shown).toBe(false);
      expect(l.sidebarTop!.shown).toBe(false);
      expect(l.header!.height).toBeLessThanOrEqual(56);
      // The messages start right under it and take at least 75% of the screen's height.
      expect(l.messages!.top).toBeGreaterThanOrEqual(l.header!.bottom - 1);
      expect(l.messages!.height).toBeGreaterThanOrEqual(0.75 * PHONE.height);
      expect(l.composer!.bottom).toBeLessThanOrEqual(PHONE.height + 1);
      expect(l.scrollWidth).toBeLessThanOrEqual(PHONE.width);
      await page.screenshot({ path: '/tmp/phone-chat.png' });

      // The bar holds the menu button, the title and the chat's actions menu: all on it, none off screen.
      const toggle = page.locator('[data-sidebar-toggle]');
      const menuButton = page.locator('[data-chat-menu] > summary');
      for (const control of [toggle, menuButton]) {
        const b = (await control.boundingBox())!;
        expect(b.y + b.height).toBeLessThanOrEqual(l.header!.bottom);
        expect(b.x + b.width).toBeLessThanOrEqual(PHONE.width);
        expect(b.width).toBeGreaterThanOrEqual(36);
      }
      // The actions are behind it: hidden until it opens, then all on screen.
      const share = page.locator('[data-share]');
      expect(await share.isVisible()).toBe(false);
      expect(await menuButton.getAttribute('title')).toBeTruthy();
      await menuButton.click();
      for (const item of ['[data-share]', '[data-export="md"]', '[data-export="json"]']) {
        const b = (await page.locator(item).boundingBox())!;
        expect(b.x).toBeGreaterThanOrEqual(0);
        expect(b.x + b.width).toBeLessThanOrEqual(PHONE.width);
      }
      await page.screenshot({ path: '/tmp/phone-menu.png' });
      await page.keyboard.press('Escape');
      expect(await share.isVisible()).toBe(false);

      // The drawer: slides in from the left edge over the page, with the chat list and New chat.
      const link = page.locator(`[data-chat-list] a[href="${new URL(page.url()).pathname}"]`);
      expect(await link.isVisible()).toBe(false);
      await toggle.click();
      await link.waitFor({ state: 'visible' });
      expect(await toggle.getAttribute('aria-expanded')).toBe('true');
      await page.waitForFunction(() => document.querySelector('aside.sidebar')!.getBoundingClientRect().left === 0);
      l = await layout(page);
      expect(l.sidebar!.right).toBeLessThan(PHONE.width);
      expect(l.scrollWidth).toBeLessThanOrEqual(PHONE.width);
      expect(await page.locator('[data-new-chat]').isVisible()).toBe(true);
      await page.screenshot({ path: '/tmp/phone-drawer.png' });
      // A tap beside it (on the scrim) closes it.
      await page.mouse.click(PHONE.width - 10, PHONE.height / 2);
      await link.waitFor({ state: 'hidden' });
      expect(await toggle.getAttribute('aria-expanded')).toBe('false');
      // Its close button does too, the focus back on the menu button.
      await toggle.click();
      await page.locator('[data-drawer-close]').click();
      await link.waitFor({ state: 'hidden' });
      expect(await toggle.evaluate((el) => el === document.activeElement)).toBe(true);
      // Picking a chat in it opens the chat and closes it.
      await toggle.click();
      await page.locator('[data-new-chat]').click();
      await page.waitForURL(/\/chat$/);
      await page.locator('[data-new-chat]').waitFor({ state: 'hidden' });
      // This context is the test's own: its CSP record is read here, before it closes.
      expect(await cspViolations([page])).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('the Solver page opens the same drawer from its header', async () => {
    const context = await phone();
    try {
      const page = await session.newPage(context);
      await page.goto(`${app.url}/solver`);
      const chats = page.locator('aside.sidebar a[href="/chat"]').last();
      expect(await chats.isVisible()).toBe(false);
      await page.locator('[data-sidebar-toggle]').click();
      await chats.waitFor({ state: 'visible' });
      await page.keyboard.press('Escape');
      await chats.waitFor({ state: 'hidden' });
      expect(await page.locator('[data-issue-url]').isVisible()).toBe(true);
      expect(await page.evaluate(() => document.scrollingElement!.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
      expect(await cspViolations([page])).toEqual([]);
    } finally {
      await context.close();
    }
  });
});

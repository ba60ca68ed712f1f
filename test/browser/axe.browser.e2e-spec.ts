/**
 * Accessibility of the chat page (issue 20): axe-core, injected into real Chromium, finds no
 * violation on a chat with an answer, its folded thinking and a code block on screen, on a desktop
 * (1280×800) and a phone (390×844), in light and dark; nor with the settings popover open, the
 * phone's drawer open, or an error in words over the box. Real server, FakeDeepSeek as the model.
 */
import { source as axeSource } from 'axe-core';
import type { BrowserContext, Page } from 'playwright-core';
import { FakeDeepSeek } from '../fakes/deepseek.fake';
import { ASSISTANT, browserSession, cspViolations, sendText, UUID_PATH } from '../support/browser';
import { type RunningApp, startApp } from '../support/app';

jest.setTimeout(120_000);

interface Violation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[]; failureSummary?: string }[];
}

/**
 * axe's violations on the page as one line each (rule, impact, first elements), for a readable
 * failure. The script goes in through the DevTools protocol (`evaluate`), which the page's CSP
 * (script-src 'self') does not govern, so no inline script is added to the page.
 */
async function violations(page: Page): Promise<string[]> {
  if (!(await page.evaluate(() => 'axe' in window))) {
    // The page's own CSP record first: after axe is in, its refused style elements are in it too.
    expect(await cspViolations([page])).toEqual([]);
    await page.evaluate(axeSource);
  }
  const found = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (ctx: Document, opts: object) => Promise<{ violations: Violation[] }> } }).axe;
    const result = await axe.run(document, { resultTypes: ['violations'] });
    return result.violations;
  });
  return found.map(
    (v) =>
      `${v.id} (${v.impact}): ${v.help} at ${v.nodes
        .map((n) => n.target.join(' '))
        .slice(0, 3)
        .join(', ')}`,
  );
}

describe('chat page accessibility (axe) in Chromium', () => {
  let fake: FakeDeepSeek;
  let app: RunningApp;
  let chatPath = '';
  // axe adds style elements of its own while it checks colours: the page's CSP (style-src 'self')
  // refuses them and says so in the console. Those lines are axe's, not the page's.
  const session = browserSession({ viewport: { width: 1280, height: 800 }, account: () => app.url, expectedConsole: /^Applying inline style violates/ });

  beforeAll(async () => {
    fake = await FakeDeepSeek.start();
    app = await startApp({ AUTH_MODE: 'local', DEEPSEEK_BASE_URL: fake.baseUrl, DEEPSEEK_API_KEY: 'test-key' });
  });
  afterAll(async () => {
    await app?.close();
    await fake?.close();
  });

  /** A context of `size` and `scheme`, signed in, on the chat with an answer (made once, by the first test). */
  const openChat = async (size: { width: number; height: number }, scheme: 'light' | 'dark'): Promise<{ context: BrowserContext; page: Page }> => {
    const phone = size.width < 500;
    const context = await session.browser.newContext({ viewport: size, colorScheme: scheme, isMobile: phone, hasTouch: phone });
    await session.signIn(context);
    const page = await session.newPage(context);
    if (!chatPath) {
      await page.goto(`${app.url}/chat`);
      await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
      fake.enqueue({
        kind: 'stream',
        reasoning: ['The reader wants ', 'a loop.'],
        content: ['Here is a loop in **Python**:\n\n', '```python\nfor i in range(3):\n    print(i)\n```\n\n', 'It prints `0`, `1` and `2`.'],
      });
      await sendText(page, 'Show me a loop');
      await page.waitForURL(UUID_PATH);
      chatPath = new URL(page.url()).pathname;
    } else {
      await page.goto(`${app.url}${chatPath}`);
    }
    await page.locator(`${ASSISTANT}[data-status="complete"] .code-block`).waitFor();
    await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
    return { context, page };
  };

  it.each([
    ['desktop', 'light'],
    ['desktop', 'dark'],
    ['phone', 'light'],
    ['phone', 'dark'],
  ] as const)('%s, %s: no violation with an answer and a code block on screen', async (device, scheme) => {
    const size = device === 'phone' ? { width: 390, height: 844 } : { width: 1280, height: 800 };
    const { context, page } = await openChat(size, scheme);
    try {
      expect(await page.locator(`${ASSISTANT} details[data-reasoning]`).count()).toBe(1);
      expect(await violations(page)).toEqual([]);
      if (device === 'desktop') {
        // The settings popover open, a field refused in words under it.
        await page.locator('[data-settings-toggle]').click();
        await page.locator('[data-setting="temperature"]').fill('5');
        await page.locator('[data-setting-error="temperature"]:not(:empty)').waitFor();
        expect(await violations(page)).toEqual([]);
        // An error over the box, its detail folded.
        await page.locator('[data-setting="temperature"]').fill('');
        await page.locator('[data-settings-close]').click();
        await page.evaluate(() => {
          const box = document.querySelector('[data-form-error]')!;
          box.innerHTML =
            '<span class="error-text" data-error-text>The model stopped responding. Try again.</span> <details class="error-details"><summary>Details</summary><code>upstream_timeout: no progress</code></details>';
        });
        expect(await violations(page)).toEqual([]);
      } else {
        // The drawer open, and the chat's actions menu open.
        await page.locator('[data-sidebar-toggle]').click();
        await page.locator('aside.sidebar[data-open="true"] [data-new-chat]').waitFor();
        await page.waitForFunction(() => document.querySelector('aside.sidebar')!.getBoundingClientRect().left === 0);
        expect(await violations(page)).toEqual([]);
        await page.keyboard.press('Escape');
        await page.locator('[data-chat-menu] > summary').click();
        await page.locator('[data-share]').waitFor();
        expect(await violations(page)).toEqual([]);
      }
    } finally {
      await context.close();
    }
  });
});

/**
 * The chat page in a real Chromium (Debian's package, driven by playwright-core): real clicks and
 * keys against the real server, with the model played by FakeDeepSeek. Finds things only by the
 * page hooks of docs/protocol.md (plus the page's own controls: copy, rename, delete). Every test also
 * fails on any CSP violation or console error. Screenshots go to /tmp/chat*.png (not committed).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import type { WebSocket } from 'ws';
import { FakeDeepSeek } from '../fakes/deepseek.fake';
import { ASSISTANT, BOX, browserSession, USER, UUID_PATH } from '../support/browser';
import { startApp } from '../support/app';
import { makeChat, WsTestClient } from '../support/ws-client';
import { ConnectionRegistry } from '../../src/transport/connection-registry';

jest.setTimeout(90_000);

describe('chat page in Chromium', () => {
  let fake: FakeDeepSeek;
  let app: Awaited<ReturnType<typeof startApp>>;
  let dataDir: string;
  // Every test also proves the strict CSP held (no violation event on any page it opened); the tests
  // check page and console errors themselves (`problems`, emptied before each test).
  // Runs with accounts (the default AUTH_MODE=local): each test's context signs in through the login form.
  const session = browserSession({ viewport: { width: 1200, height: 800 }, checkProblems: false, account: () => app.url });
  const { problems } = session;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'chat-browser-'));
    fake = await FakeDeepSeek.start();
    app = await startApp({
      DEEPSEEK_BASE_URL: fake.baseUrl,
      DEEPSEEK_API_KEY: 'test-key',
      DATABASE_URL: `sqlite:${join(dataDir, 'chat.db')}`,
      AUTH_MODE: 'local',
    });
  });

  afterAll(async () => {
    await app?.close();
    await fake?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  /**
   * Opens a page of the app and waits for its socket. `tuning` shortens the page script's timings
   * (window.__chatTuning); an init script records CSP violations before any page script runs.
   */
  async function openPage(path: string, opts: { tuning?: Record<string, number>; on?: BrowserContext } = {}): Promise<Page> {
    const page = await session.newPage(opts.on);
    await page.addInitScript((tuning) => {
      const w = window as unknown as { __conn: string[]; __chatTuning?: Record<string, number> };
      // Every state the connection indicator shows, in order (brief ones too).
      w.__conn = [];
      new MutationObserver((records) => {
        for (const r of records) {
          const v = (r.target as Element).getAttribute('data-connection') ?? '';
          if (w.__conn[w.__conn.length - 1] !== v) w.__conn.push(v);
        }
      }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-connection'] });
      if (tuning) w.__chatTuning = tuning;
    }, opts.tuning ?? null);
    await page.goto(app.url + path);
    await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
    return page;
  }

  /**
   * The TCP sockets under the chat's sockets opened since this call, oldest first, each given out once
   * by `take` (to cut or stall it). Read from the app's ConnectionRegistry: an `upgrade` listener added
   * now would never see our path (FrameSocketServer keeps every other listener off it).
   */
  function trackUpgrades(): { fresh: () => Socket[]; take: () => Socket[] } {
    const registry = app.app.get(ConnectionRegistry);
    const seen = new Set([...registry.all()].map((c) => c.id));
    const fresh = () => [...registry.all()].filter((c) => !seen.has(c.id));
    return {
      fresh: () => fresh().map(rawSocket),
      take: () =>
        fresh().map((c) => {
          seen.add(c.id);
          return rawSocket(c);
        }),
    };
  }

  /** The TCP socket under a chat socket (what the registry itself corks: ws's `_socket`). */
  function rawSocket(connection: { socket: WebSocket }): Socket {
    return (connection.socket as WebSocket & { _socket: Socket })._socket;
  }

  /**
   * Turns live sockets into black holes: nothing they send arrives and nothing is read from them, and
   * no close is ever seen by the browser — a stalled connection (a sleeping laptop, a dead Wi-Fi).
   */
  function stall(sockets: Socket[]): void {
    for (const socket of sockets.splice(0)) {
      socket.pause();
      socket.write = (() => true) as typeof socket.write;
      setTimeout(() => socket.destroy(), 15_000).unref();
    }
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
    await page.waitForFunction(() => document.querySelectorAll('[data-role="assistant"][data-status="complete"]').length === 2);
    expect((await lastAssistant(page).locator('[data-content]').textContent())?.trim()).toBe('Echo: and again');
    expect(page.url()).toMatch(new RegExp(`/chat/${chatId}$`));
    expect(await page.locator(`[data-chat-list] a[href="/chat/${chatId}"]`).count()).toBe(1);

    // Back and forward go through htmx history, still without a full load.
    await page.goBack();
    await page.waitForURL(/\/chat$/);
    await page.waitForFunction(() => document.querySelector('#chat-content')?.getAttribute('data-chat-id') === '');
    await page.goForward();
    await page.waitForURL(UUID_PATH);
    await page.waitForFunction(() => document.querySelectorAll('[data-role="assistant"][data-status="complete"] [data-content] strong').length === 1);
    expect(await page.evaluate(() => (window as unknown as { __noReload?: number }).__noReload)).toBe(42);
    await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });

    expect(problems).toEqual([]);
  });

  it('shows the connection state, following the browser going offline and online', async () => {
    const page = await openPage('/chat');
    await session.context.setOffline(true);
    await page.locator('[data-connection="offline"]').waitFor({ state: 'attached' });
    await session.context.setOffline(false);
    await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
    expect(problems).toEqual([]);
  });

  it('reconnects after the socket drops and finishes the answer it was showing', async () => {
    const upgrades = trackUpgrades();
    const page = await openPage('/chat');
    const pieces = Array.from({ length: 16 }, (_, i) => `r${i} `);
    fake.enqueue({ kind: 'stream', content: pieces, delayMs: 120 });
    await ask(page, 'Keep going');
    await streamingShows(page, 'r3');
    const cut = upgrades.take();
    expect(cut).toHaveLength(1);
    for (const socket of cut) socket.destroy();
    await page.locator('[data-connection="connecting"]').waitFor({ state: 'attached' });
    await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
    await page.locator(`${ASSISTANT}[data-status="complete"]`).waitFor();
    expect((await lastAssistant(page).locator('[data-content]').textContent())?.trim()).toBe(pieces.join('').trim());
    expect(problems).toEqual([]);
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

  const connMark = (page: Page) => page.evaluate(() => (window as unknown as { __conn: string[] }).__conn.length);
  /** The indicator went to `connecting` and came back to `connected` after `mark`. */
  const reconnectedSince = (page: Page, mark: number, timeout: number) =>
    page.waitForFunction(
      (m) => {
        const seen = (window as unknown as { __conn: string[] }).__conn.slice(m);
        return seen.includes('connecting') && seen[seen.length - 1] === 'connected';
      },
      mark,
      { timeout },
    );

  /** Splits text into pieces of `size` characters, as a model streams it. */
  function pieces(text: string, size: number): string[] {
    const out: string[] = [];
    for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
    return out;
  }

  const CODE_ANSWER = [
    'Here is a function:',
    '',
    '```js',
    'function add(a, b) {',
    '  return a + b; // sum',
    '}',
    '```',
    '',
    '| op | result |',
    '|----|--------|',
    '| add(1, 2) | 3 |',
    '',
    '- one',
    '- two',
    '',
    '```python',
    'def greet(name):',
    '    return f"hi {name}"',
    '```',
    '',
    'Done.',
  ].join('\n');

  it('highlights code with a working Copy button; streamed and stored HTML are the same; announced once', async () => {
    await session.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: app.url });
    const page = await openPage('/chat');
    // Every value the polite live region takes, and every label the thinking's summary shows.
    await page.evaluate(() => {
      const w = window as unknown as { __announced: string[]; __summaries: string[] };
      w.__announced = [];
      w.__summaries = [];
      const region = document.querySelector('[data-announcer]')!;
      new MutationObserver(() => w.__announced.push(region.textContent ?? '')).observe(region, {
        childList: true,
        characterData: true,
        subtree: true,
      });
      new MutationObserver(() => {
        for (const s of Array.from(document.querySelectorAll('#chat-content details[data-reasoning] summary'))) {
          const t = s.textContent ?? '';
          if (!w.__summaries.includes(t)) w.__summaries.push(t);
        }
      }).observe(document.body, { childList: true, characterData: true, subtree: true });
    });

    fake.enqueue({
      kind: 'stream',
      // Long enough (about 0.4 s) that a frame shows the thinking under way, even on a busy machine.
      reasoning: ['Let me ', 'think ', 'about it.', ...Array.from({ length: 30 }, () => '.')],
      content: pieces(CODE_ANSWER, 6),
      delayMs: 12,
    });
    await ask(page, 'Write code');
    await page.waitForURL(UUID_PATH);
    await page.locator(`${ASSISTANT}[data-status="complete"]`).waitFor();
    const answer = lastAssistant(page);
    // While it thought, the folded thinking said so; then it said for how long.
    const summaries = await page.evaluate(() => (window as unknown as { __summaries: string[] }).__summaries);
    expect(summaries[0]).toBe('Thinking…');
    expect(summaries[summaries.length - 1]).toMatch(/^Thought for \d+ s$/);

    // highlight.js ran on both blocks: named languages, keyword spans.
    const codes = answer.locator('[data-content] pre code');
    expect(await codes.count()).toBe(2);
    expect(await codes.evaluateAll((els) => els.map((e) => e.className))).toEqual([expect.stringMatching(/\bhljs\b/), expect.stringMatching(/\bhljs\b/)]);
    expect(await answer.locator('[data-content] pre code .hljs-keyword').count()).toBeGreaterThan(1);
    expect(await answer.locator('[data-content] table td').count()).toBe(2);
    expect(await answer.locator('[data-content] ul > li').count()).toBe(2);

    // "Thought for N s", measured from the frames, folded.
    const summary = answer.locator('details[data-reasoning] summary');
    expect(await summary.textContent()).toMatch(/^Thought for \d+ s$/);
    expect(await answer.locator('details[data-reasoning]').evaluate((d) => (d as HTMLDetailsElement).open)).toBe(false);

    // The live region was given the finished answer once, not each piece.
    await page.waitForFunction(() => /Here is a function/.test(document.querySelector('[data-announcer]')?.textContent ?? ''));
    const announced = await page.evaluate(() => (window as unknown as { __announced: string[] }).__announced.filter((t) => t.trim() !== ''));
    expect(announced).toHaveLength(1);
    expect(announced[0]).toContain('Here is a function');
    expect(announced[0]).toContain('Done.');

    // The page rendered incrementally: far fewer characters parsed than re-parsing the text per frame.
    const stats = await page.evaluate(() => (window as unknown as { __chat: { stats: Record<string, number> } }).__chat.stats);
    expect(stats.committedBlocks).toBeGreaterThan(0);

    const streamedHtml = await answer.locator('[data-content]').innerHTML();
    await answer.locator('details[data-reasoning] summary').click();
    await page.screenshot({ path: '/tmp/chat-code.png' });
    await answer.locator('details[data-reasoning] summary').click();

    // Copy puts exactly the code's text on the clipboard.
    const copy = answer.locator('[data-copy-code]').first();
    await copy.click();
    await page.locator('[data-copy-code][data-copy-state="copied"]').waitFor();
    const expected = 'function add(a, b) {\n  return a + b; // sum\n}\n';
    expect(await page.evaluate(() => (window as unknown as { __chat: { lastCopied: string } }).__chat.lastCopied)).toBe(expected);
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(expected);

    // After a reload the stored message renders to the very same HTML, thinking time included.
    await page.reload();
    await page.locator(`${ASSISTANT}[data-status="complete"] [data-content][data-md="rendered"]`).waitFor();
    expect(await lastAssistant(page).locator('[data-content]').innerHTML()).toBe(streamedHtml);
    expect(await lastAssistant(page).locator('details[data-reasoning] summary').textContent()).toMatch(/^Thought for \d+ s$/);
    expect(problems).toEqual([]);
  });

  it('renames and deletes chats from the sidebar with the keyboard, without blocking dialogs', async () => {
    const keep = await makeChat(app, 'Keep me', session.cookie);
    const doomed = await makeChat(app, 'Delete me', session.cookie);
    const page = await openPage(`/chat/${doomed}`);
    page.on('dialog', (d) => {
      problems.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    const item = (id: string) => page.locator(`[data-chat-list] li:has(a[href="/chat/${id}"])`);

    // Rename the shown chat: Enter on its Rename button, type, Enter.
    await item(doomed).locator('[data-chat-rename]').focus();
    await page.keyboard.press('Enter');
    const input = item(doomed).locator('input[data-rename-input]');
    await input.waitFor();
    expect(await input.evaluate((el) => el === document.activeElement)).toBe(true);
    await page.keyboard.press('Control+A');
    await page.keyboard.type('Renamed chat');
    await page.keyboard.press('Enter');
    await item(doomed).locator('a', { hasText: 'Renamed chat' }).waitFor();
    expect(await page.locator('[data-chat-title]').textContent()).toBe('Renamed chat');
    expect(await page.title()).toBe('Renamed chat');
    expect(
      await item(doomed)
        .locator('[data-chat-rename]')
        .evaluate((el) => el === document.activeElement),
    ).toBe(true);
    const listed = async () =>
      ((await (await fetch(`${app.url}/api/chats`, { headers: { cookie: session.cookie } })).json()) as { chats: { id: string; title: string }[] }).chats;
    expect((await listed()).find((c) => c.id === doomed)?.title).toBe('Renamed chat');

    // Escape cancels a rename.
    await page.keyboard.press('Enter');
    await input.waitFor();
    await page.keyboard.type('not this');
    await page.keyboard.press('Escape');
    await input.waitFor({ state: 'detached' });
    expect((await item(doomed).locator('a').textContent())?.trim()).toBe('Renamed chat');

    // Delete asks in place; Escape says no.
    await item(doomed).locator('[data-chat-delete]').focus();
    await page.keyboard.press('Enter');
    const confirm = item(doomed).locator('[data-delete-confirm]');
    await confirm.waitFor();
    expect(await page.locator('[data-cancel-delete]').evaluate((el) => el === document.activeElement)).toBe(true);
    await page.screenshot({ path: '/tmp/chat-delete-confirm.png', clip: { x: 0, y: 0, width: 600, height: 400 } });
    await page.keyboard.press('Escape');
    await confirm.waitFor({ state: 'detached' });
    expect((await listed()).some((c) => c.id === doomed)).toBe(true);

    // Delete for real: the list drops it, and the page leaves the deleted chat for a new one.
    await page.keyboard.press('Enter');
    await confirm.waitFor();
    await page.keyboard.press('Shift+Tab');
    expect(await page.locator('[data-confirm-delete]').evaluate((el) => el === document.activeElement)).toBe(true);
    await page.keyboard.press('Enter');
    await item(doomed).waitFor({ state: 'detached' });
    await page.waitForURL(/\/chat$/);
    await page.waitForFunction(() => document.querySelector('#chat-content')?.getAttribute('data-chat-id') === '');
    expect((await listed()).some((c) => c.id === doomed)).toBe(false);
    expect(await item(keep).count()).toBe(1);
    expect(await page.evaluate(() => document.activeElement?.tagName)).not.toBe('BODY');
    expect(problems).toEqual([]);
  });

  it('works with the keyboard alone: Tab reaches chats, the box and Send, and focus is always visible', async () => {
    await makeChat(app, 'A chat to reach', session.cookie);
    const page = await openPage('/chat');
    const seen: { hook: string; outline: string }[] = [];
    for (let i = 0; i < 80; i++) {
      await page.keyboard.press('Tab');
      const info = await page.evaluate(() => {
        const el = document.activeElement as HTMLElement | null;
        if (!el || el === document.body) return null;
        const cs = getComputedStyle(el);
        const hook = el.matches('[data-chat-list] a')
          ? 'chat-link'
          : el.matches('textarea[name=content]')
            ? 'box'
            : el.matches('[data-send]')
              ? 'send'
              : el.tagName.toLowerCase();
        return { hook, outline: `${cs.outlineStyle} ${cs.outlineWidth}` };
      });
      if (!info) continue;
      if (info.hook === 'chat-link' && !seen.some((s) => s.hook === 'chat-link')) {
        await page.screenshot({ path: '/tmp/chat-focus.png', clip: { x: 0, y: 0, width: 600, height: 300 } });
      }
      seen.push(info);
      if (info.hook === 'send') break;
    }
    const hooks = seen.map((s) => s.hook);
    expect(hooks).toContain('chat-link');
    expect(hooks).toContain('box');
    expect(hooks).toContain('send');
    for (const s of seen) {
      expect(`${s.hook}: ${s.outline}`).not.toMatch(/: none|: \S+ 0px/);
    }

    // Back to the box with Shift+Tab (across the composer's own tools between the box and Send), type,
    // and send with Enter: no mouse anywhere.
    for (let i = 0; i < 8 && !(await page.locator(BOX).evaluate((el) => el === document.activeElement)); i++) {
      await page.keyboard.press('Shift+Tab');
      expect(await page.evaluate(() => !!document.activeElement?.closest('form[data-chat-form]'))).toBe(true);
    }
    expect(await page.locator(BOX).evaluate((el) => el === document.activeElement)).toBe(true);
    await page.keyboard.type('keys only');
    await page.keyboard.press('Enter');
    await page.locator(`${ASSISTANT}[data-status="complete"]`).waitFor();
    expect((await lastAssistant(page).locator('[data-content]').textContent())?.trim()).toBe('Echo: keys only');
    expect(await page.locator(BOX).evaluate((el) => el === document.activeElement)).toBe(true);
    expect(problems).toEqual([]);
  });

  it('fits a 360 px phone without sideways scrolling, sidebar folded and openable; screenshots light, dark, phone', async () => {
    const wide = 'x'.repeat(300);
    const chatId = await makeChat(app, `Wide ${wide}`, session.cookie);
    fake.enqueue({
      kind: 'stream',
      content: [
        `A long line \`${wide}\` and https://example.com/${wide}\n\n\`\`\`js\nconst s = "${wide}";\n\`\`\`\n\n| a | b | c | d |\n|---|---|---|---|\n| ${wide} | 2 | 3 | 4 |\n`,
      ],
    });
    const ws = await WsTestClient.connect(app.wsUrl, { headers: { Origin: app.url, Cookie: session.cookie } });
    ws.send({ type: 'user_message', chat_id: chatId, content: 'Wide content please' });
    await ws.next((f) => f.type === 'agent_response_end');
    ws.close();

    const phone = await session.browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
    try {
      await session.signIn(phone);
      const page = await openPage(`/chat/${chatId}`, { on: phone });
      await page.locator(`${ASSISTANT}[data-status="complete"] [data-content][data-md="rendered"]`).last().waitFor();
      const overflow = () =>
        page.evaluate(() => ({
          scroll: document.scrollingElement!.scrollWidth,
          inner: window.innerWidth,
          body: document.body.scrollWidth,
        }));
      let o = await overflow();
      expect(o.scroll).toBeLessThanOrEqual(o.inner);
      expect(o.body).toBeLessThanOrEqual(o.inner);

      // The chat list is folded away behind the toggle, and opens and closes again.
      const link = page.locator(`[data-chat-list] a[href="/chat/${chatId}"]`);
      expect(await link.isVisible()).toBe(false);
      const toggle = page.locator('[data-sidebar-toggle]');
      expect(await toggle.isVisible()).toBe(true);
      await page.screenshot({ path: '/tmp/chat-phone.png' });
      await toggle.click();
      await link.waitFor({ state: 'visible' });
      expect(await toggle.getAttribute('aria-expanded')).toBe('true');
      o = await overflow();
      expect(o.scroll).toBeLessThanOrEqual(o.inner);
      await page.screenshot({ path: '/tmp/chat-phone-nav.png' });
      await page.keyboard.press('Escape');
      await link.waitFor({ state: 'hidden' });
      expect(await toggle.getAttribute('aria-expanded')).toBe('false');
    } finally {
      await phone.close();
    }

    // The "connecting" dot pulses, unless the reader asked for reduced motion.
    const pulse = (page: Page) =>
      page.evaluate(() => {
        const indicator = document.querySelector('[data-connection]') as HTMLElement;
        const before = indicator.dataset.connection!;
        indicator.dataset.connection = 'connecting';
        const name = getComputedStyle(indicator.querySelector('.connection-dot')!).animationName;
        indicator.dataset.connection = before;
        return name;
      });
    const dark = await session.browser.newContext({
      viewport: { width: 1200, height: 800 },
      colorScheme: 'dark',
      reducedMotion: 'reduce',
    });
    try {
      await session.signIn(dark);
      const page = await openPage(`/chat/${chatId}`, { on: dark });
      await page.locator(`${ASSISTANT} [data-content][data-md="rendered"]`).last().waitFor();
      const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      expect(bg).not.toBe('rgb(255, 255, 255)');
      expect(await pulse(page)).toBe('none');
      await page.screenshot({ path: '/tmp/chat-dark.png' });
    } finally {
      await dark.close();
    }

    const page = await openPage(`/chat/${chatId}`);
    await page.locator(`${ASSISTANT} [data-content][data-md="rendered"]`).last().waitFor();
    expect(await page.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe('rgb(255, 255, 255)');
    expect(await pulse(page)).toBe('pulse');
    await page.screenshot({ path: '/tmp/chat-light.png' });
    expect(problems).toEqual([]);
  });

  it('notices a stalled socket on visibilitychange, on pageshow and by its watchdog, and resumes the answer', async () => {
    const upgrades = trackUpgrades();
    // Watchdog slow here: only the page events can explain a quick recovery.
    const page = await openPage('/chat', {
      tuning: { wakeTimeoutMs: 800, watchdogTickMs: 200, streamIdlePingMs: 60_000, idlePingMs: 60_000 },
    });
    const words = Array.from({ length: 28 }, (_, i) => `v${i} `);
    fake.enqueue({ kind: 'stream', content: words, delayMs: 100 });
    await ask(page, 'Stall me');
    await streamingShows(page, 'v2');

    const recovers = async (event: () => Promise<void>) => {
      const before = upgrades.fresh().length;
      const mark = await connMark(page);
      stall(upgrades.take());
      const t0 = Date.now();
      await event();
      await reconnectedSince(page, mark, 5000);
      expect(before).toBe(1);
      return Date.now() - t0;
    };
    const afterVisible = await recovers(() => page.evaluate(() => void document.dispatchEvent(new Event('visibilitychange'))));
    const seenAt = (await lastAssistant(page).locator('[data-content]').textContent()) ?? '';
    const afterPageshow = await recovers(() => page.evaluate(() => void window.dispatchEvent(new PageTransitionEvent('pageshow', { persisted: true }))));
    expect(afterVisible).toBeLessThan(3000);
    expect(afterPageshow).toBeLessThan(3000);
    await page.locator(`${ASSISTANT}[data-status="complete"]`).waitFor();
    const text = (await lastAssistant(page).locator('[data-content]').textContent())?.trim();
    expect(text).toBe(words.join('').trim());
    expect(seenAt.length).toBeGreaterThan(0);

    // A second page with a quick watchdog: a stall with no page event at all is found by itself.
    const watched = await openPage('/chat', { tuning: { streamIdlePingMs: 700, pongTimeoutMs: 700, watchdogTickMs: 200 } });
    // Only the watched page's socket (the newest) is stalled; the first page's stays live.
    const watchedSocket = upgrades.take().slice(-1);
    expect(watchedSocket).toHaveLength(1);
    const more = Array.from({ length: 24 }, (_, i) => `k${i} `);
    fake.enqueue({ kind: 'stream', content: more, delayMs: 100 });
    await ask(watched, 'Stall me quietly');
    await streamingShows(watched, 'k2');
    const mark = await connMark(watched);
    stall(watchedSocket);
    await reconnectedSince(watched, mark, 5000);
    await watched.locator(`${ASSISTANT}[data-status="complete"]`).waitFor();
    expect((await lastAssistant(watched).locator('[data-content]').textContent())?.trim()).toBe(more.join('').trim());
    expect(problems).toEqual([]);
  });
});

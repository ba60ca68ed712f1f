/**
 * More of the chat page (issue 20), in real Chromium against the real server with FakeDeepSeek as
 * the model: "Retrying 2/4…" while the model request is retried, a generated title replacing the
 * first line, the sidebar by date and its usage line, suggestion chips on an empty chat, shortcuts.
 */
import { Kysely } from 'kysely';
import type { Database } from '../../src/storage/schema';
import { FakeDeepSeek } from '../fakes/deepseek.fake';
import { deferred } from '../../src/common/deferred';
import { ASSISTANT, BOX, browserSession, openChatPage, sendText, USER, UUID_PATH } from '../support/browser';
import { type RunningApp, startApp } from '../support/app';
import { makeChat } from '../support/ws-client';

jest.setTimeout(90_000);

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

  const openChat = (path?: string) => openChatPage(session, app.url, path);
  const send = sendText;

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
    // Downloads are named after it.
    await page.locator('[data-chat-menu] > summary').click();
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('[data-export="md"]').click()]);
    // A choice closes the menu.
    expect(await page.locator('[data-chat-menu]').evaluate((d) => (d as HTMLDetailsElement).open)).toBe(false);
    // Esc closes it too, focus back on it.
    const menuOpen = () => page.locator('[data-chat-menu]').evaluate((d) => (d as HTMLDetailsElement).open);
    await page.locator('[data-chat-menu] > summary').click();
    expect(await menuOpen()).toBe(true);
    await page.keyboard.press('Escape');
    expect(await menuOpen()).toBe(false);
    expect(await page.locator('[data-chat-menu] > summary').evaluate((el) => el === document.activeElement)).toBe(true);
    expect(download.suggestedFilename()).toBe('Sorting a list in Python.md');
  });

  it('the usage line counts "1 answer", then "2 answers", each right after its answer', async () => {
    const page = await openChat();
    const usage = page.locator('aside [data-usage]');
    await usage.filter({ hasText: /Usage: .* · \d+ answers?$/ }).waitFor();
    const count = async () => Number(/· (\d+) answers?$/.exec((await usage.textContent()) ?? '')![1]);
    const before = await count();
    fake.enqueue({ kind: 'stream', content: ['One'] });
    await send(page, 'first');
    await page.locator(`${ASSISTANT}[data-status="complete"]`).waitFor();
    await usage.filter({ hasText: new RegExp(`· ${before + 1} answers?$`) }).waitFor();
    if (before === 0) expect(await usage.textContent()).toMatch(/· 1 answer$/);
    fake.enqueue({ kind: 'stream', content: ['Two'] });
    await send(page, 'second');
    await page.locator(`${ASSISTANT}[data-status="complete"]`).nth(1).waitFor();
    await usage.filter({ hasText: new RegExp(`· ${before + 2} answers$`) }).waitFor();
  });

  it('the sidebar groups chats by date (Today, Yesterday, Previous 7 days, Older); rename and delete show on hover or focus only', async () => {
    const ids = {
      today: await makeChat(app, 'Fresh chat', session.cookie),
      yesterday: await makeChat(app, 'From yesterday', session.cookie),
      week: await makeChat(app, 'Three days ago', session.cookie),
      older: await makeChat(app, 'Long ago', session.cookie),
    };
    // Their last activity moved back in time (local days, as the page groups them).
    const midnight = new Date();
    midnight.setHours(0, 0, 0, 0);
    const at = (ms: number) => new Date(midnight.getTime() + ms).toISOString();
    const db = app.app.get(Kysely, { strict: false }) as Kysely<Database>;
    const hour = 3_600_000;
    for (const [id, when] of [
      [ids.yesterday, at(-12 * hour)],
      [ids.week, at(-72 * hour)],
      [ids.older, at(-30 * 24 * hour)],
    ]) {
      await db.updateTable('chats').set({ updated_at: when }).where('id', '=', id).execute();
    }
    const page = await openChat(`/chat/${ids.today}`);
    const rows = async () =>
      page
        .locator('[data-chat-list] > li')
        .evaluateAll((lis) =>
          lis.map((li) => ((li as HTMLElement).dataset.chatGroup ? `# ${li.textContent}` : (li.querySelector('a')?.textContent ?? '').trim())),
        );
    const sequence = (await rows()).filter((r) => r.startsWith('#') || ['Fresh chat', 'From yesterday', 'Three days ago', 'Long ago'].includes(r));
    expect(sequence).toEqual(['# Today', 'Fresh chat', '# Yesterday', 'From yesterday', '# Previous 7 days', 'Three days ago', '# Older', 'Long ago']);
    // Every chat is still an a[href="/chat/UUID"] in [data-chat-list].
    for (const id of Object.values(ids)) expect(await page.locator(`[data-chat-list] a[href="/chat/${id}"]`).count()).toBe(1);

    // Rename and delete: hidden (and the title using the row's width) until hover or focus.
    const item = page.locator(`[data-chat-item="${ids.week}"]`);
    const actionsOpacity = () => item.locator('.chat-actions').evaluate((el) => getComputedStyle(el).opacity);
    await page.mouse.move(900, 600);
    expect(await actionsOpacity()).toBe('0');
    const [linkWidth, rowWidth] = await item.evaluate((li) => [li.querySelector('a')!.getBoundingClientRect().width, li.getBoundingClientRect().width]);
    expect(linkWidth).toBeGreaterThan(rowWidth - 2);
    // The open chat too: only on hover or focus.
    expect(await page.locator(`[data-chat-item="${ids.today}"] .chat-actions`).evaluate((el) => getComputedStyle(el).opacity)).toBe('0');
    await item.hover();
    expect(await actionsOpacity()).toBe('1');
    await page.mouse.move(900, 600);
    expect(await actionsOpacity()).toBe('0');
    await item.locator('[data-chat-rename]').focus();
    expect(await actionsOpacity()).toBe('1');
    await page.screenshot({ path: '/tmp/sidebar-groups.png', clip: { x: 0, y: 0, width: 400, height: 700 } });

    // A new message in an old chat brings it to the top, under Today; an emptied group goes.
    await page.goto(`${app.url}/chat/${ids.older}`);
    await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
    await send(page, 'back again');
    await page.locator(`${ASSISTANT}[data-status="complete"]`).nth(1).waitFor();
    const after = (await rows()).filter((r) => r.startsWith('#') || ['Fresh chat', 'From yesterday', 'Three days ago', 'Long ago'].includes(r));
    expect(after).toEqual(['# Today', 'Long ago', 'Fresh chat', '# Yesterday', 'From yesterday', '# Previous 7 days', 'Three days ago']);
  });

  it('an empty chat offers suggestion chips: one puts its text in the box, focused, to be sent with Enter', async () => {
    const page = await openChat();
    const chips = page.locator('[data-empty] [data-suggestions] button[data-suggestion]');
    expect(await chips.count()).toBeGreaterThanOrEqual(3);
    await chips.filter({ hasText: 'Write some code' }).click();
    const text = 'Write a Python function that removes duplicates from a list and keeps the order.';
    expect(await page.locator(BOX).inputValue()).toBe(text);
    expect(await page.locator(BOX).evaluate((el) => el === document.activeElement)).toBe(true);
    // Nothing was sent for the reader.
    expect(await page.locator('[data-message-id]').count()).toBe(0);
    fake.enqueue({ kind: 'stream', content: ['def dedupe(xs): ...'] });
    await page.keyboard.press('Enter');
    await page.locator(`${USER} [data-content]`, { hasText: text }).waitFor();
    await page.locator(`${ASSISTANT}[data-status="complete"]`).waitFor();
    expect(await page.locator('[data-suggestions]').count()).toBe(0);
  });

  it('shortcuts: Ctrl+Shift+O starts a new chat, Shift+Esc goes to the message box, Ctrl+/ shows the list and Esc hides it', async () => {
    const page = await openChat();
    fake.enqueue({ kind: 'stream', content: ['Noted'] });
    await send(page, 'a chat to leave');
    await page.locator(`${ASSISTANT}[data-status="complete"]`).waitFor();
    await page.waitForURL(UUID_PATH);
    await page.locator('[data-new-chat]').focus();

    await page.keyboard.press('Shift+Escape');
    expect(await page.locator(BOX).evaluate((el) => el === document.activeElement)).toBe(true);

    await page.locator('[data-chat-list] a').first().focus();
    await page.keyboard.press('Control+Shift+O');
    await page.waitForURL(/\/chat$/);
    await page.locator('[data-empty]').waitFor();
    expect(await page.locator('[data-message-id]').count()).toBe(0);

    const help = page.locator('details[data-shortcuts]');
    expect(await help.evaluate((d) => (d as HTMLDetailsElement).open)).toBe(false);
    await page.keyboard.press('Control+/');
    await help.locator('dl').waitFor({ state: 'visible' });
    expect(await help.locator('dd').allTextContents()).toEqual(expect.arrayContaining(['New chat', 'Type a message', 'Stop the answer']));
    await page.keyboard.press('Escape');
    await help.locator('dl').waitFor({ state: 'hidden' });
    expect(await help.locator('summary').evaluate((el) => el === document.activeElement)).toBe(true);
  });
});

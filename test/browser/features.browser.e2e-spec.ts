/**
 * The chat features of issue 7 in a real Chromium (Debian's package, driven by playwright-core):
 * model picker, thinking toggle and settings reaching the model, the context note, sidebar search,
 * share links, import, attachments, regenerate with its version switcher and the usage view.
 * Every test also fails on any CSP violation or page error. Screenshot: /tmp/features.png.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { FakeDeepSeek } from '../fakes/deepseek.fake';
import { ASSISTANT, BOX, browserSession, USER, UUID_PATH } from '../support/browser';
import { startApp } from '../support/app';
import { makeChat } from '../support/ws-client';

jest.setTimeout(90_000);

describe('chat features in Chromium', () => {
  let fake: FakeDeepSeek;
  let app: Awaited<ReturnType<typeof startApp>>;
  let dataDir: string;
  // Expected refusals (413/415 uploads, the revoked share link, the nonsense import) show as failed loads in the console.
  // Runs with accounts (the default AUTH_MODE=local): each test's context signs in through the login form.
  const session = browserSession({ viewport: { width: 1200, height: 860 }, expectedConsole: /status of (400|404|413|415|429)/, account: () => app.url });

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'chat-features-'));
    fake = await FakeDeepSeek.start();
    app = await startApp({
      DEEPSEEK_BASE_URL: fake.baseUrl,
      DEEPSEEK_API_KEY: 'test-key',
      DATABASE_URL: `sqlite:${join(dataDir, 'chat.db')}`,
      RATE_LIMIT_PER_MINUTE: '0',
      AUTH_MODE: 'local',
      // Small, so that one long message pushes older turns out of the context.
      CONTEXT_TOKENS: '400',
      // Two 1 MB files cannot both be kept: the second upload meets the quota.
      FILE_QUOTA_BYTES: '2000000',
    });
  });

  afterAll(async () => {
    await app?.close();
    await fake?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  /** Opens a page; records CSP violations and page errors; waits for the socket unless `readonly`. */
  async function openPage(path: string, opts: { readonly?: boolean } = {}): Promise<Page> {
    const page = await session.newPage();
    await page.goto(app.url + path);
    if (!opts.readonly) await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
    return page;
  }

  async function ask(page: Page, text: string): Promise<void> {
    await page.locator(BOX).click();
    await page.keyboard.type(text);
    await page.keyboard.press('Enter');
  }

  /** The chat/completions request whose last user message contains `text`. */
  function requestFor(text: string) {
    const found = fake.requests.filter((r) => {
      const msgs = r.body?.messages;
      if (!Array.isArray(msgs)) return false;
      const users = msgs.filter((m: { role: string }) => m.role === 'user');
      return users.length > 0 && String(users[users.length - 1].content).includes(text);
    });
    return found[found.length - 1];
  }

  it('sends the picked model, thinking off and the settings to the model, and shows usage', async () => {
    const page = await openPage('/chat');
    const picker = page.locator('[data-model-picker]');
    await page.locator('[data-model-picker] option[value="deepseek-v4-pro"]').waitFor({ state: 'attached' });
    await picker.selectOption('deepseek-v4-pro');
    await page.locator('[data-thinking]').uncheck();
    await page.locator('[data-settings-toggle]').click();
    await page.locator('[data-setting="temperature"]').fill('0.3');
    await page.locator('[data-setting="max_tokens"]').fill('321');
    await page.locator('[data-setting="system_prompt"]').fill('You are terse.');
    // Enter in the system prompt is a new line there, not a send.
    await page.locator('[data-setting="system_prompt"]').press('Enter');
    expect(await page.locator(USER).count()).toBe(0);

    await ask(page, 'Settings please');
    await page.waitForURL(UUID_PATH);
    await page.locator(`${ASSISTANT}[data-status="complete"]`).waitFor();
    // The new chat has its export links now (no reload needed).
    const chatId = new URL(page.url()).pathname.split('/').pop()!;
    // Share and downloads are in the header's one menu.
    await page.locator('[data-chat-menu] > summary').click();
    expect(await page.locator('[data-export="md"]').isVisible()).toBe(true);
    expect(await page.locator('[data-export="md"]').getAttribute('href')).toBe(`/api/chats/${chatId}/export?format=md`);

    const body = requestFor('Settings please')!.body;
    expect(body.model).toBe('deepseek-v4-pro');
    expect(body.thinking).toEqual({ type: 'disabled' });
    expect(body.temperature).toBe(0.3);
    expect(body.max_tokens).toBe(321);
    expect(body.messages[0].role).toBe('system');
    expect(body.messages[0].content).toContain('You are terse.');
    expect(await page.locator('[data-reasoning]').count()).toBe(0);

    // Nothing changed since: no options go out, and the chat keeps its stored settings.
    await ask(page, 'And again');
    await page.locator(`${ASSISTANT}[data-status="complete"]`).nth(1).waitFor();
    const again = requestFor('And again')!.body;
    expect(again.model).toBe('deepseek-v4-pro');
    expect(again.max_tokens).toBe(321);

    // The chat's stored settings are shown in the page after a reload.
    await page.reload();
    await page.locator('[data-connection="connected"]').waitFor();
    await page.waitForFunction(() => (document.querySelector('[data-model-picker]') as HTMLSelectElement | null)?.value === 'deepseek-v4-pro');
    expect(await page.locator('[data-setting="max_tokens"]').inputValue()).toBe('321');
    expect(await page.locator('[data-thinking]').isChecked()).toBe(false);

    // The usage view counts the answers (the fake reports usage).
    await page.waitForFunction(() => Number(document.querySelector<HTMLElement>('[data-usage]')?.dataset.totalTokens ?? 0) > 0);
    expect(await page.locator('[data-usage]').textContent()).toMatch(/Usage: [\d,]+ tokens/);
  });

  it('says when older turns were left out of the context', async () => {
    const page = await openPage('/chat');
    await page.locator(BOX).fill(`Long one ${'lorem ipsum dolor '.repeat(120)}`);
    await page.locator(BOX).press('Enter');
    await page.waitForURL(UUID_PATH);
    await page.locator(`${ASSISTANT}[data-status="complete"]`).waitFor();
    await ask(page, 'Short follow-up');
    await page.locator('[data-context-note]').waitFor();
    expect(await page.locator('[data-context-note]').textContent()).toMatch(/left out of the context/);

    // Stored with the answer: after a reload the note is still there, right before that answer only.
    await page.locator(`${ASSISTANT}[data-status="complete"]`).nth(1).waitFor();
    await page.reload();
    await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
    const note = page.locator('[data-context-note]');
    await note.waitFor();
    expect(await note.count()).toBe(1);
    expect(await note.isVisible()).toBe(true);
    expect(await note.textContent()).toBe("1 older turn was left out of the context to fit the model's limit.");
    const noteBefore = await page
      .locator(ASSISTANT)
      .evaluateAll((els) => els.map((el) => el.previousElementSibling?.hasAttribute('data-context-note') ?? false));
    expect(noteBefore).toEqual([false, true]);

    // The shared read-only page shows it too.
    await page.locator('[data-chat-menu] > summary').click();
    await page.locator('[data-share]').click();
    await page.waitForFunction(() => (document.querySelector('[data-share-url]') as HTMLInputElement | null)?.value.includes('/share/'));
    const url = await page.locator('[data-share-url]').inputValue();
    const shared = await openPage(url.slice(app.url.length), { readonly: true });
    await shared.locator(`[data-context-note] + ${ASSISTANT}`).waitFor();
    expect(await shared.locator('[data-context-note]').textContent()).toBe("1 older turn was left out of the context to fit the model's limit.");
    await shared.close();
  });

  it('finds a chat with the sidebar search and opens it', async () => {
    const id = await makeChat(app, 'Tell me about the quokka islands', session.cookie);
    await makeChat(app, 'Something unrelated', session.cookie);
    const page = await openPage('/chat');
    await page.locator('[data-search]').fill('quokka');
    const hit = page.locator(`[data-search-results] a[href="/chat/${id}"]`).first();
    await hit.waitFor();
    expect(await page.locator('[data-search-results] mark').first().textContent()).toMatch(/quokka/i);
    await hit.click();
    await page.waitForURL(`**/chat/${id}`);
    await page.waitForFunction((chatId) => document.querySelector('#chat-content')?.getAttribute('data-chat-id') === chatId, id);
    expect(await page.locator(`${USER} [data-content]`).first().textContent()).toContain('quokka');
  });

  it('shares a chat read-only, revokes the link, exports and imports it', async () => {
    const id = await makeChat(app, 'A chat worth sharing', session.cookie);
    const page = await openPage(`/chat/${id}`);
    expect(await page.locator('[data-export="json"]').getAttribute('href')).toBe(`/api/chats/${id}/export?format=json`);
    expect(await page.locator('[data-export="md"]').getAttribute('href')).toBe(`/api/chats/${id}/export?format=md`);

    await page.locator('[data-chat-menu] > summary').click();
    await page.locator('[data-share]').click();
    await page.waitForFunction(() => (document.querySelector('[data-share-url]') as HTMLInputElement | null)?.value.includes('/share/'));
    const url = await page.locator('[data-share-url]').inputValue();
    expect(url.startsWith(`${app.url}/share/`)).toBe(true);

    const shared = await openPage(url.slice(app.url.length), { readonly: true });
    expect(await shared.locator(`${USER} [data-content]`).textContent()).toContain('A chat worth sharing');
    expect(await shared.locator('form[data-chat-form]').count()).toBe(0);
    expect(await shared.locator('[data-chat-list]').count()).toBe(0);
    await shared.close();

    await page.locator('[data-share-revoke]').click();
    await page.locator('[data-share-status]', { hasText: 'revoked' }).waitFor();
    const gone = await page.request.get(url);
    expect(gone.status()).toBe(404);

    // Import the JSON export: a new chat with the same messages opens.
    const exported = await page.request.get(`${app.url}/api/chats/${id}/export?format=json`);
    await page.locator('[data-import]').setInputFiles({ name: 'chat.json', mimeType: 'application/json', buffer: await exported.body() });
    await page.waitForURL((u) => UUID_PATH.test(u.pathname) && !u.pathname.endsWith(id));
    await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
    expect(await page.locator(`${USER} [data-content]`).textContent()).toContain('A chat worth sharing');

    // Nonsense is refused with a clear note.
    await page.locator('[data-import]').setInputFiles({ name: 'x.json', mimeType: 'application/json', buffer: Buffer.from('{"format":"nope"}') });
    await page.locator('[data-import-error]', { hasText: 'not a chat export' }).waitFor();
  });

  it('attaches a text file: chip on the box and the message, its text reaches the model; 413/415 are shown', async () => {
    const page = await openPage('/chat');
    const input = page.locator('[data-attach-input]');

    await input.setInputFiles({ name: 'photo.bin', mimeType: 'application/octet-stream', buffer: Buffer.from([0, 1, 2, 0, 255]) });
    await page.locator('[data-form-error]', { hasText: 'not a text file' }).waitFor();
    await input.setInputFiles({ name: 'huge.txt', mimeType: 'text/plain', buffer: Buffer.alloc(1_048_577, 'a') });
    await page.locator('[data-form-error]', { hasText: 'too large' }).waitFor();

    await input.setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('The secret word is PLATYPUS.\n') });
    const chip = page.locator('[data-attach-chips] .chip');
    await chip.waitFor();
    expect(await chip.textContent()).toMatch(/notes\.txt\s*29 B/);

    await ask(page, 'What is the secret word?');
    await page.locator(`${ASSISTANT}[data-status="complete"]`).waitFor();
    expect(await page.locator('[data-attach-chips] .chip').count()).toBe(0);
    expect(await page.locator(`${USER} [data-message-attachments] .chip`).textContent()).toContain('notes.txt');
    const sent = JSON.stringify(requestFor('What is the secret word?')!.body.messages);
    expect(sent).toContain('PLATYPUS');
    expect(sent).toContain('notes.txt');

    // The stored message shows its chip after a reload too.
    await page.reload();
    await page.locator(`${USER} [data-message-attachments] .chip`, { hasText: 'notes.txt' }).waitFor();
  });

  it("says which limit refused an upload, in the server's words", async () => {
    const page = await openPage('/chat');
    const input = page.locator('[data-attach-input]');
    const megabyte = (name: string) => ({ name, mimeType: 'text/plain', buffer: Buffer.alloc(1_000_000, 'q') });
    await input.setInputFiles(megabyte('first.txt'));
    await page.locator('[data-attach-chips] .chip', { hasText: 'first.txt' }).waitFor();
    await input.setInputFiles(megabyte('second.txt'));
    const error = page.locator('[data-form-error]', { hasText: 'second.txt could not be uploaded' });
    await error.waitFor();
    expect(await error.textContent()).toContain('file storage quota');
    expect(await page.locator('[data-attach-chips] .chip').count()).toBe(1);
  });

  it('regenerates the last answer and switches between its versions', async () => {
    const page = await openPage('/chat');
    fake.enqueue({ kind: 'stream', content: ['First ', 'answer.'] });
    await ask(page, 'Regenerate me');
    await page.waitForURL(UUID_PATH);
    await page.locator(`${ASSISTANT}[data-status="complete"]`).waitFor();
    const firstId = await page.locator(ASSISTANT).getAttribute('data-message-id');

    fake.enqueue({ kind: 'stream', content: ['Second ', 'answer.'], delayMs: 60 });
    await page.locator('[data-regenerate]').click();
    await page.waitForFunction((old) => {
      const el = document.querySelector('[data-role="assistant"][data-status="complete"]');
      return !!el && el.getAttribute('data-message-id') !== old && !!el.textContent?.includes('Second answer.');
    }, firstId);
    expect(await page.locator(ASSISTANT).count()).toBe(1);
    const answer = page.locator(ASSISTANT);
    expect(await answer.locator('[data-version-label]').textContent()).toBe('2/2');
    await page.locator('[data-regenerate]').waitFor();

    await answer.locator('[data-version-prev]').click();
    await answer.locator('[data-version-content]', { hasText: 'First answer.' }).waitFor();
    expect(await answer.locator('[data-version-label]').textContent()).toBe('1/2');
    expect(await answer.locator('[data-content]').isVisible()).toBe(false);

    await answer.locator('[data-version-next]').click();
    expect(await answer.locator('[data-version-content]').count()).toBe(0);
    expect(await answer.locator('[data-content]').textContent()).toContain('Second answer.');

    // After a reload the switcher comes from the stored previous_versions.
    await page.reload();
    await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
    expect(await page.locator(`${ASSISTANT} [data-version-label]`).textContent()).toBe('2/2');
    await page.locator(`${ASSISTANT} [data-version-prev]`).click();
    await page.locator(`${ASSISTANT} [data-version-content]`, { hasText: 'First answer.' }).waitFor();

    // A screenshot of the features together.
    await page.locator('[data-attach-input]').setInputFiles({ name: 'todo.md', mimeType: 'text/plain', buffer: Buffer.from('# todo\n') });
    await page.locator('[data-attach-chips] .chip').waitFor();
    await page.locator('[data-settings-toggle]').click();
    await page.locator('[data-search]').fill('Regenerate');
    await page.locator('[data-search-results] a').first().waitFor();
    await page.screenshot({ path: '/tmp/features.png' });
  });
});

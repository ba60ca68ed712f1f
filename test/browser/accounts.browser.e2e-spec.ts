/**
 * Accounts in a real Chromium with the default settings (AUTH_MODE=local): the forms as a person uses
 * them, with whatever headers Chromium itself sends (no Origin is faked), and the account menu.
 * The tests run in order: the first account made is the admin.
 */
import type { Page } from 'playwright-core';
import { FakeDeepSeek } from '../fakes/deepseek.fake';
import { type RunningApp, startApp } from '../support/app';
import { ASSISTANT, BOX, browserSession, PASSWORD, signInThroughForm, UUID_PATH } from '../support/browser';

jest.setTimeout(60_000);

describe('accounts in Chromium (AUTH_MODE=local)', () => {
  let fake: FakeDeepSeek;
  let app: RunningApp;
  // A refused form comes back with its status (401, 403, 409), which Chromium logs.
  const session = browserSession({ viewport: { width: 1200, height: 800 }, expectedConsole: /status of (401|403|409)/ });

  beforeAll(async () => {
    fake = await FakeDeepSeek.start();
    app = await startApp({ AUTH_MODE: 'local', DEEPSEEK_BASE_URL: fake.baseUrl, DEEPSEEK_API_KEY: 'test-key' });
  });
  afterAll(async () => {
    await app?.close();
    await fake?.close();
  });

  /** Fills and sends one of our auth forms as a person would. */
  async function submit(page: Page, fields: Record<string, string>, button = 'button[type=submit]'): Promise<void> {
    for (const [selector, value] of Object.entries(fields)) await page.locator(selector).fill(value);
    await Promise.all([page.waitForNavigation(), page.locator(button).first().click()]);
  }

  async function openMenu(page: Page): Promise<void> {
    await page.locator('[data-account-menu] summary').click();
  }

  it('signs up through the form, chats, logs out from the menu, signs in again and finds the chat', async () => {
    const page = await session.newPage();
    await page.goto(`${app.url}/chat`);
    expect(new URL(page.url()).pathname).toBe('/login');
    await Promise.all([page.waitForURL(`${app.url}/signup`), page.getByRole('link', { name: 'Create an account' }).click()]);
    await submit(page, { '#username': 'ada', '#password': PASSWORD });
    expect(page.url()).toBe(`${app.url}/chat`);
    expect(await page.locator('[data-account-name]').textContent()).toBe('ada');

    await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
    fake.enqueue({ kind: 'stream', content: ['Stored ', 'for ', 'later.'] });
    await page.locator(BOX).fill('Remember the lighthouse');
    await page.keyboard.press('Enter');
    await page.waitForURL(UUID_PATH);
    const chatUrl = page.url();
    await page.locator(`${ASSISTANT}[data-status="complete"]`).waitFor();

    await openMenu(page);
    await page.screenshot({ path: '/tmp/account-menu.png' });
    await Promise.all([page.waitForURL(`${app.url}/login`), page.locator('[data-logout]').click()]);
    // The session is gone on the server: the chat is behind the login page again.
    await page.goto(chatUrl);
    expect(new URL(page.url()).pathname).toBe('/login');

    await submit(page, { '#username': 'ada', '#password': PASSWORD });
    expect(page.url()).toBe(`${app.url}/chat`);
    const link = page.locator('[data-chat-list] .chat-link', { hasText: 'Remember the lighthouse' });
    await Promise.all([page.waitForURL(chatUrl), link.click()]);
    await page.locator(ASSISTANT).waitFor();
    expect((await page.locator(`${ASSISTANT} [data-content]`).textContent())?.trim()).toBe('Stored for later.');
  });

  it('shows a wrong password and a taken name on the form, with the typed name kept', async () => {
    const page = await session.newPage();
    await page.goto(`${app.url}/login`);
    await submit(page, { '#username': 'ada', '#password': 'not the password' });
    expect(await page.locator('[data-auth-error]').textContent()).toBe('wrong username or password');
    expect(await page.locator('#username').inputValue()).toBe('ada');
    expect(await page.locator('form[data-auth-form="login"]').count()).toBe(1);

    await page.goto(`${app.url}/signup`);
    await submit(page, { '#username': 'ADA', '#password': PASSWORD });
    expect(await page.locator('[data-auth-error]').textContent()).toBe('that username is taken');
    expect(await page.locator('#username').inputValue()).toBe('ADA');
    expect(await page.locator('form[data-auth-form="signup"]').count()).toBe(1);
  });

  it('changes the password from the account menu and signs out the other sessions', async () => {
    const other = await session.browser.newContext();
    try {
      await signInThroughForm(other, app.url, 'ada');
      const stale = await session.newPage(other);
      await stale.goto(`${app.url}/chat`);
      await stale.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
      const page = await session.newPage();
      await page.goto(`${app.url}/login`);
      await submit(page, { '#username': 'ada', '#password': PASSWORD });

      await openMenu(page);
      await Promise.all([page.waitForURL(`${app.url}/account`), page.locator('[data-change-password]').click()]);
      await submit(page, { '#current-password': 'wrong current one', '#new-password': 'a brand new passphrase' });
      expect(await page.locator('[data-auth-error]').textContent()).toBe('the current password is wrong');
      await submit(page, { '#current-password': PASSWORD, '#new-password': 'a brand new passphrase' });
      expect(await page.locator('[data-auth-notice]').textContent()).toMatch(/Password changed/);
      await page.screenshot({ path: '/tmp/account-page.png' });

      // The other session's open page is sent to the login page by itself (its socket closed with 4401).
      await stale.waitForURL(`${app.url}/login`);
      await stale.goto(`${app.url}/chat`);
      expect(new URL(stale.url()).pathname).toBe('/login');
      await page.goto(`${app.url}/chat`);
      expect(new URL(page.url()).pathname).toBe('/chat');

      // Back to the suite's password, through the same form.
      await page.goto(`${app.url}/account`);
      await submit(page, { '#current-password': 'a brand new passphrase', '#new-password': PASSWORD });
    } finally {
      await other.close();
    }
  });

  it('lets the admin close sign-up from the menu, at once; the sign-up form then says so', async () => {
    const page = await session.newPage();
    await page.goto(`${app.url}/login`);
    await submit(page, { '#username': 'ada', '#password': PASSWORD });
    await openMenu(page);
    expect(await page.locator('[data-account-menu] [data-signup-state]').getAttribute('data-signup-state')).toBe('open');
    await submit(page, {}, '[data-account-menu] [data-signup-switch] button');
    expect(await page.locator('[data-signup-state]').getAttribute('data-signup-state')).toBe('closed');

    const stranger = await session.newPage(await session.browser.newContext());
    await stranger.goto(`${app.url}/signup`);
    await submit(stranger, { '#username': 'mallory', '#password': PASSWORD });
    expect(await stranger.locator('[data-auth-error]').textContent()).toBe('sign-up is closed');
    expect(await stranger.locator('#username').inputValue()).toBe('mallory');
    await stranger.context().close();

    // Open again from the account page.
    await submit(page, {}, '[data-signup-switch] button');
    expect(await page.locator('[data-signup-state]').getAttribute('data-signup-state')).toBe('open');
  });

  it('a second user has a menu without the admin switch', async () => {
    const page = await session.newPage();
    await signInThroughForm(session.context, app.url, 'grace', 'signup');
    await page.goto(`${app.url}/chat`);
    await openMenu(page);
    expect(await page.locator('[data-account-name]').textContent()).toBe('grace');
    expect(await page.locator('[data-signup-switch]').count()).toBe(0);
    expect(await page.locator('[data-chat-list] .chat-link').count()).toBe(0); // ada's chat is not hers
  });
});

describe('AUTH_MODE=none in Chromium (a private machine)', () => {
  let app: RunningApp;
  const session = browserSession({ viewport: { width: 1200, height: 800 } });
  beforeAll(async () => {
    app = await startApp({ AUTH_MODE: 'none' });
  });
  afterAll(() => app?.close());

  it('opens the chat without an account, and shows no account menu', async () => {
    const page = await session.newPage();
    await page.goto(`${app.url}/chat`);
    expect(new URL(page.url()).pathname).toBe('/chat');
    await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
    expect(await page.locator('[data-account-menu]').count()).toBe(0);
  });
});

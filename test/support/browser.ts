import { existsSync } from 'node:fs';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

/** The chat page's address once a chat is open, its message box, and its messages. */
export const UUID_PATH = /\/chat\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const BOX = 'form[data-chat-form] textarea[name=content]';
export const ASSISTANT = '[data-message-id][data-role="assistant"]';
export const USER = '[data-message-id][data-role="user"]';

/** Debian's Chromium (CI installs the package); the flags this closed network needs. */
export const CHROMIUM = '/usr/bin/chromium';

/** Launches headless Chromium, or fails the suite with how to install it (never skips). */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is missing at ${CHROMIUM}. The browser tests need Debian's package: run \`apt-get update && apt-get install -y chromium\` (CI installs it).`,
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/**
 * Watches a page for trouble, before it loads anything: uncaught errors and console errors go to
 * `problems` (console errors matching `expected` are left out), and an init script records CSP
 * violations in `window.__csp` for `cspViolations`.
 */
export async function watchPage(page: Page, problems: string[], expected?: RegExp): Promise<void> {
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    const text = msg.text();
    if (msg.type() === 'error' && !msg.location().url.includes('favicon') && !expected?.test(text)) problems.push(`console: ${text}`);
  });
  await page.addInitScript(() => {
    const w = window as unknown as { __csp: string[] };
    w.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => w.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
  });
}

/** The CSP violations `watchPage` recorded in `window.__csp` (closed pages are skipped). */
export async function cspViolations(pages: Page[]): Promise<string[]> {
  const violations: string[] = [];
  for (const page of pages) {
    if (page.isClosed()) continue;
    violations.push(...(await page.evaluate(() => (window as unknown as { __csp?: string[] }).__csp ?? []).catch(() => [])));
  }
  return violations;
}

/** The password every browser suite's accounts use. */
export const PASSWORD = 'correct horse battery';

/**
 * Signs in through the real form in `context` (`signup`: creates the account first), as a person
 * would, and waits for the chat page. Returns the session as a Cookie header, for the test's own
 * requests and sockets beside the page.
 */
export async function signInThroughForm(context: BrowserContext, url: string, username: string, mode: 'signup' | 'login' = 'login'): Promise<string> {
  const page = await context.newPage();
  try {
    await page.goto(`${url}/${mode}`);
    await page.locator('#username').fill(username);
    await page.locator('#password').fill(PASSWORD);
    await Promise.all([page.waitForURL(`${url}/chat`), page.locator('button[type=submit]').click()]);
    // Signed in for real (the menu shows only with accounts), not let through by AUTH_MODE=none.
    expect(await page.locator('[data-account-name]').textContent()).toBe(username);
  } finally {
    await page.close();
  }
  const cookies = await context.cookies(url);
  return cookies.map((c) => `${c.name}=${c.value}`).join('; ');
}

export interface BrowserSession {
  /** The suite's Chromium. */
  readonly browser: Browser;
  /** The running test's own context (a new one per test). */
  readonly context: BrowserContext;
  /** Page and console errors of the test's pages (the same array, emptied before each test). */
  readonly problems: string[];
  /** A new page on the test's context (or `on`), watched: errors to `problems`, CSP violations recorded. */
  newPage(on?: BrowserContext): Promise<Page>;
  /** With `account`: the test context's session as a Cookie header (for requests beside the page). */
  readonly cookie: string;
  /** With `account`: signs another context in as the suite's user, through the login form. */
  signIn(on: BrowserContext): Promise<string>;
}

/**
 * What every browser suite sets up: Chromium for the suite, a fresh context per test, and after
 * each test the checks: no CSP violation on any page the test opened, and (unless `checkProblems`
 * is false: the suite checks `problems` itself) no page or console error.
 */
export function browserSession(options: {
  viewport: { width: number; height: number };
  /** Console errors the suite's pages are expected to show (refused uploads…). */
  expectedConsole?: RegExp;
  checkProblems?: boolean;
  /**
   * The app's URL, for suites running with accounts (the default AUTH_MODE=local): the suite's user
   * signs up through the real form before the first test, and each test's context signs in through
   * the login form.
   */
  account?: () => string;
}): BrowserSession {
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  const problems: string[] = [];
  const pages: Page[] = [];
  const username = `user${Math.random().toString(36).slice(2, 10)}`;
  let signedUp = false;
  let cookie = '';
  const signIn = async (on: BrowserContext): Promise<string> => {
    const mode = signedUp ? 'login' : 'signup';
    const header = await signInThroughForm(on, options.account!(), username, mode);
    signedUp = true;
    return header;
  };
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });
  beforeEach(async () => {
    problems.length = 0;
    pages.length = 0;
    context = await browser!.newContext({ viewport: options.viewport });
    if (options.account) cookie = await signIn(context);
  });
  afterEach(async () => {
    const violations = await cspViolations(pages);
    await context?.close();
    expect(violations).toEqual([]);
    if (options.checkProblems !== false) expect(problems).toEqual([]);
  });
  return {
    get browser() {
      return browser!;
    },
    get context() {
      return context!;
    },
    problems,
    async newPage(on?: BrowserContext) {
      const page = await (on ?? context!).newPage();
      pages.push(page);
      await watchPage(page, problems, options.expectedConsole);
      return page;
    },
    get cookie() {
      return cookie;
    },
    signIn,
  };
}

/** A chat page (`path`, a new chat by default) on a new watched page of the session, once its socket is connected. */
export async function openChatPage(session: BrowserSession, url: string, path = '/chat'): Promise<Page> {
  const page = await session.newPage();
  await page.goto(`${url}${path}`);
  await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
  return page;
}

/** Types `text` into the message box and sends it with Enter. */
export async function sendText(page: Page, text: string): Promise<void> {
  await page.locator(BOX).fill(text);
  await page.keyboard.press('Enter');
}

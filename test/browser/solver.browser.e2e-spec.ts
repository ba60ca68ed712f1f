/**
 * The Solver page in a real Chromium (Debian's package, driven by playwright-core), against the real
 * server with the model played by FakeDeepSeek and GitHub by FakeGithub (repository octo/calc with
 * its off-by-one bug, as in test/solver.e2e-spec.ts). Every test also fails on any CSP violation or
 * page error. A screenshot goes to /tmp/solver.png (not committed).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { FakeDeepSeek, type Scenario } from '../fakes/deepseek.fake';
import { CALC_FILES, CALC_FIX_DIFF, CALC_ISSUE, FakeGithub } from '../fakes/github.fake';
import { browserSession } from '../support/browser';
import { startApp } from '../support/app';
import { answer, pieces, solverRequestKind, stream } from '../support/solver-model';

const ISSUE_URL = 'https://github.com/octo/calc/issues/7';
const RUN_PATH = /\/solver\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const URL_BOX = 'form[data-solver-form] input[name=issue_url]';
const RUN = '[data-solver-run]';

jest.setTimeout(90_000);

describe('Solver page in Chromium', () => {
  let model: FakeDeepSeek;
  let github: FakeGithub;
  let app: Awaited<ReturnType<typeof startApp>>;
  let dataDir: string;
  // Runs with accounts (the default AUTH_MODE=local): each test's context signs in through the login form.
  const session = browserSession({ viewport: { width: 1200, height: 900 }, account: () => app.url });
  /** What the fake model answers, by request kind. */
  let answers: { files: () => Scenario; solution: () => Scenario; repair: () => Scenario };

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'solver-browser-'));
    model = await FakeDeepSeek.start();
    github = await FakeGithub.start();
    model.setDefault((body) => {
      const kind = solverRequestKind(body);
      return kind === 'chat' ? { kind: 'stream', content: ['Hello'] } : answers[kind]();
    });
    app = await startApp({
      DEEPSEEK_BASE_URL: model.baseUrl,
      DEEPSEEK_API_KEY: 'test-key',
      GITHUB_API_URL: github.url,
      RATE_LIMIT_PER_MINUTE: '0',
      AUTH_MODE: 'local',
      DATABASE_URL: `sqlite:${join(dataDir, 'chat.db')}`,
    });
  });

  afterAll(async () => {
    await app?.close();
    await model?.close();
    await github?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    github.addRepo({ owner: 'octo', name: 'calc', files: CALC_FILES, issues: [CALC_ISSUE] });
    answers = {
      files: () => stream('{"files": ["src/math.js"]}'),
      solution: () => stream(answer('The loop reads one element past the end, so the sum is NaN.', CALC_FIX_DIFF), { delayMs: 20 }),
      repair: () => stream(answer('Fixed the context.', CALC_FIX_DIFF)),
    };
  });

  /** Opens a page, records CSP violations and every progress value shown, waits for the socket. */
  async function openPage(path: string): Promise<Page> {
    const page = await session.newPage();
    await page.addInitScript(() => {
      const w = window as unknown as { __progress: number[] };
      w.__progress = [];
      new MutationObserver((records) => {
        for (const r of records) {
          const v = Number((r.target as Element).getAttribute('data-progress'));
          if (w.__progress[w.__progress.length - 1] !== v) w.__progress.push(v);
        }
      }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-progress'] });
    });
    await page.goto(app.url + path);
    await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
    return page;
  }

  async function solve(page: Page, url: string): Promise<void> {
    await page.locator(URL_BOX).click();
    await page.locator(URL_BOX).fill(url);
    await page.locator('[data-solve]').click();
  }

  it('solves an issue: progress by stage to complete, thinking folded, solution, coloured patch, copy; the stored run renders', async () => {
    await session.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: app.url });
    const page = await openPage('/solver');
    expect(await page.locator(RUN).isHidden()).toBe(true);
    await solve(page, ISSUE_URL);

    // While it runs: the form is disabled and Stop shows; the address is the run's.
    await page.waitForURL(RUN_PATH);
    const runId = new URL(page.url()).pathname.split('/').pop()!;
    expect(await page.locator(RUN).getAttribute('data-run-id')).toBe(runId);

    await page.locator(`${RUN}[data-status="complete"]`).waitFor({ timeout: 30_000 });
    expect(await page.locator('[data-solver-stop]').isHidden()).toBe(true);
    expect(await page.locator(URL_BOX).isDisabled()).toBe(false);

    // The bar advanced through several values, never falling, and reached 100.
    const progress = await page.evaluate(() => (window as unknown as { __progress: number[] }).__progress);
    expect(progress.length).toBeGreaterThanOrEqual(4);
    for (let i = 1; i < progress.length; i++) expect(progress[i]).toBeGreaterThanOrEqual(progress[i - 1]);
    expect(progress[progress.length - 1]).toBe(100);
    expect(await page.locator('[data-progress-bar]').evaluate((el) => (el as HTMLProgressElement).value)).toBe(100);
    const states = await page.locator('li[data-stage]:not([hidden])').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.state));
    expect(states).toEqual(['done', 'done', 'done', 'done', 'done', 'done']);

    // Thinking is there, folded.
    const thinking = page.locator('details[data-solver-reasoning]');
    expect(await thinking.isVisible()).toBe(true);
    expect(await thinking.evaluate((d) => (d as HTMLDetailsElement).open)).toBe(false);
    expect(await thinking.locator('[data-reasoning-text]').textContent()).toContain('Let me look at the loop.');

    // The solution (summary) and the files.
    expect(await page.locator('[data-solution]').textContent()).toContain('The loop reads one element past the end');
    expect(await page.locator('[data-applies]').getAttribute('data-applies')).toBe('true');
    expect(await page.locator('[data-files] li').allTextContents()).toEqual(['src/math.js']);

    // The patch, coloured as a diff by highlight.js.
    const patch = page.locator('code[data-patch]');
    await patch.locator('.hljs-deletion').first().waitFor();
    expect(await patch.locator('.hljs-addition').count()).toBeGreaterThan(0);
    expect(await patch.getAttribute('class')).toContain('hljs');
    const patchText = (await patch.textContent())!;
    expect(patchText).toMatch(/^diff --git a\/src\/math.js b\/src\/math.js\n/);
    expect(patchText).toContain('-  for (let i = 0; i <= values.length; i++) {');
    expect(patchText).toContain('+  for (let i = 0; i < values.length; i++) {');

    // Copy puts exactly the patch on the clipboard.
    await page.locator('[data-copy-patch]').click();
    await page.locator('[data-copy-patch][data-copy-state="copied"]').waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(patchText);

    // The new run is in the sidebar.
    expect(await page.locator(`[data-run-list] a[href="/solver/${runId}"]`).count()).toBe(1);

    await page.screenshot({ path: '/tmp/solver.png', fullPage: true });

    // The stored run, rendered by the server.
    const stored = await openPage(`/solver/${runId}`);
    expect(await stored.locator(`${RUN}[data-run-id="${runId}"][data-status="complete"]`).count()).toBe(1);
    expect(await stored.locator('[data-progress-bar]').evaluate((el) => (el as HTMLProgressElement).value)).toBe(100);
    expect(await stored.locator('[data-solution]').textContent()).toContain('The loop reads one element past the end');
    expect(await stored.locator('[data-files] li').allTextContents()).toEqual(['src/math.js']);
    await stored.locator('code[data-patch] .hljs-addition').first().waitFor();
    expect(await stored.locator('code[data-patch]').textContent()).toBe(patchText);
    expect(await stored.locator(URL_BOX).inputValue()).toBe(ISSUE_URL);
    expect(await stored.locator(`[data-run-list] a[aria-current="page"]`).getAttribute('href')).toBe(`/solver/${runId}`);
    await stored.screenshot({ path: '/tmp/solver-stored.png', fullPage: true });

    // Unknown and malformed run ids are the 404 page.
    const missing = await session.context.newPage();
    expect((await missing.goto(`${app.url}/solver/00000000-0000-4000-8000-000000000000`))!.status()).toBe(404);
    expect((await missing.goto(`${app.url}/solver/not-a-uuid`))!.status()).toBe(404);
    await missing.close();
  });

  it('Stop ends a slow run: stopped is shown with the patch so far', async () => {
    const content = answer('Because the loop overruns.', CALC_FIX_DIFF);
    const diffStart = content.indexOf('```diff');
    answers.solution = () => ({
      kind: 'stream',
      content: [content.slice(0, diffStart + 50), ...pieces(content.slice(diffStart + 50), 4)],
      delayMs: 150,
    });
    const page = await openPage('/solver');
    await solve(page, ISSUE_URL);
    await page.waitForFunction(() => (document.querySelector('[data-solution]')?.textContent ?? '').includes('```diff'), null, { timeout: 20_000 });
    const stop = page.locator('[data-solver-stop]');
    expect(await stop.isVisible()).toBe(true);
    expect(await page.locator('[data-solve]').isDisabled()).toBe(true);
    await stop.click();
    await page.locator(`${RUN}[data-status="stopped"]`).waitFor({ timeout: 10_000 });
    expect(await page.locator('[data-run-badge]').textContent()).toBe('stopped');
    expect(await page.locator('li[data-stage][data-state="stopped"]').getAttribute('data-stage')).toBe('solution');
    expect(await page.locator('[data-applies]').getAttribute('data-applies')).toBe('false');
    const patch = (await page.locator('code[data-patch]').textContent())!;
    expect(patch).toMatch(/^--- a\/src\/math.js\n\+\+\+ b\/src\/math.js\n/);
    expect(patch.length).toBeLessThan(CALC_FIX_DIFF.length);
    expect(await stop.isHidden()).toBe(true);
    expect(await page.locator('[data-solve]').isDisabled()).toBe(false);
    expect(Number(await page.locator(RUN).getAttribute('data-progress'))).toBeLessThan(100);
  });

  it('a run goes on through a lost connection and a reload: the page catches up and follows it to its end', async () => {
    const content = answer('Because the loop overruns.', CALC_FIX_DIFF);
    answers.files = () => stream('{"files": ["src/math.js"]}', { reasoning: [] });
    answers.solution = () => ({ kind: 'stream', reasoning: ['Thinking ', 'it over.'], content: pieces(content, 8), delayMs: 40 });
    const page = await openPage('/solver');
    await solve(page, ISSUE_URL);
    const solutionText = () => page.evaluate(() => document.querySelector('[data-solution]')?.textContent ?? '');
    await page.waitForFunction(() => (document.querySelector('[data-solution]')?.textContent ?? '').length > 20, null, { timeout: 20_000 });

    // the lid closes and opens again: the socket drops, the run does not
    await session.context.setOffline(true);
    await page.locator('[data-connection="offline"]').waitFor({ state: 'attached' });
    const before = (await solutionText()).length;
    await session.context.setOffline(false);
    await page.locator('[data-connection="connected"]').waitFor({ state: 'attached', timeout: 15_000 });
    await page.waitForFunction((n) => (document.querySelector('[data-solution]')?.textContent ?? '').length > n + 16, before, { timeout: 20_000 });
    expect(content.startsWith((await solutionText()).trim().slice(0, 40))).toBe(true);
    expect(await page.locator(`${RUN}[data-status="running"]`).count()).toBe(1);

    // a reload mid-run: the stored page, then the run followed live from its start
    await page.reload();
    await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
    await page.locator(`${RUN}[data-status="complete"]`).waitFor({ timeout: 30_000 });
    expect(await page.locator('[data-run-badge]').textContent()).toBe('complete');
    // every piece once: the catch-up after the reload started from the first one
    expect(await page.locator('[data-reasoning-text]').textContent()).toBe('Thinking it over.');
    const runId = new URL(page.url()).pathname.split('/').pop()!;
    const stored = await (await fetch(`${app.url}/api/solver/runs/${runId}`, { headers: { cookie: session.cookie } })).json();
    expect(stored).toMatchObject({ status: 'complete', applies: true });
    expect(await page.locator('code[data-patch]').textContent()).toBe(stored.patch);
    expect(stored.patch).toContain('+  for (let i = 0; i < values.length; i++) {');
    expect(await page.locator('[data-applies]').getAttribute('data-applies')).toBe('true');
    expect(await page.locator('[data-solver-error]').isHidden()).toBe(true);
  });

  it('a bad URL says what to paste and starts no run; a GitHub failure says so in words, the raw code folded in Details', async () => {
    const page = await openPage('/solver');
    await solve(page, 'https://gitlab.com/octo/calc/issues/7');
    const error = page.locator('[data-solver-error]');
    await error.waitFor();
    const words = error.locator('[data-error-text]');
    const details = error.locator('details[data-error-details]');
    expect(await words.textContent()).toBe('That is not a GitHub issue URL. Paste one like https://github.com/OWNER/REPO/issues/123.');
    expect(await details.evaluate((d) => (d as HTMLDetailsElement).open)).toBe(false);
    expect(await details.locator('code').textContent()).toMatch(/^invalid_message: issue_url: /);
    expect(await page.locator(RUN).isHidden()).toBe(true);
    expect(await page.locator('[data-solve]').isDisabled()).toBe(false);
    expect(new URL(page.url()).pathname).toBe('/solver');

    // An issue that does not exist: the run starts, then GitHub's error ends it.
    await solve(page, 'https://github.com/octo/calc/issues/99');
    await page.locator(`${RUN}[data-status="error"]`).waitFor();
    expect(await words.textContent()).toMatch(/^GitHub could not be read for this issue\. .*issue #99 of octo\/calc was not found/);
    expect(await words.textContent()).not.toContain('github_error');
    expect(await details.locator('code').textContent()).toMatch(/^github_error: /);
    expect(await page.locator('[data-solve]').isDisabled()).toBe(false);

    // The failed run's own page shows the stored error.
    await page.waitForURL(RUN_PATH);
    const stored = await openPage(new URL(page.url()).pathname);
    expect(await stored.locator(`${RUN}[data-status="error"]`).count()).toBe(1);
    const storedWords = stored.locator('[data-solver-error] [data-error-text]');
    expect(await storedWords.textContent()).toMatch(/^GitHub could not be read for this issue\. .*issue #99 of octo\/calc was not found/);
    expect(await stored.locator('[data-solver-error] details[data-error-details] code').textContent()).toMatch(/^github_error: /);
    expect(await stored.locator('[data-patch-block]').isHidden()).toBe(true);
    await stored.setViewportSize({ width: 420, height: 800 });
    await stored.screenshot({ path: '/tmp/solver-narrow.png', fullPage: true });
  });
});

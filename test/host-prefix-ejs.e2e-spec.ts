import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import request from 'supertest';
import { FakeDeepSeek } from './fakes/deepseek.fake';
import { BOX, cspViolations, launchChromium, watchPage } from './support/browser';
import { compileHost, installPackedLibrary } from './support/packed-library';
import { ServerProcess } from './support/server-process';
import { type AnyFrame, upgradeStatus, WsTestClient } from './support/ws-client';

const HOST = join(__dirname, 'hosts', 'prefix-ejs');
const BASE = '/api/assistant';

/**
 * A host with its own global prefix ('api'), global ValidationPipe (whitelist, forbidNonWhitelisted),
 * helmet, a global interceptor that wraps answers in `{ data }` and EJS views (test/hosts/prefix-ejs; its views folder also holds a not_found and a
 * layouts/chat_content of its own), built against the packed library. The chat is mounted at
 * /api/assistant: with routePrefix 'assistant' and setGlobalPrefix before mounting, and with
 * routePrefix 'api/assistant' and setGlobalPrefix after it.
 */
describe('a host with a global prefix, ValidationPipe, helmet and EJS views (e2e, packed library)', () => {
  let work: string;
  let fake: FakeDeepSeek;
  let browser: Browser | undefined;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'chat-host-prefix-'));
    const app = join(work, 'host');
    installPackedLibrary(app);
    for (const entry of ['src', 'views', 'tsconfig.json', 'package.json']) cpSync(join(HOST, entry), join(app, entry), { recursive: true });
    compileHost(app);
    fake = await FakeDeepSeek.start();
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await fake?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  describe.each(['before', 'after'])('setGlobalPrefix %s mounting the chat', (order) => {
    let host: ServerProcess | undefined;
    let url = '';
    let cookie = '';

    beforeAll(async () => {
      host = await ServerProcess.start(
        {
          PREFIX_ORDER: order,
          CHAT_DATABASE_URL: `sqlite:${join(work, `chat-${order}.db`)}`,
          CHAT_DEEPSEEK_BASE_URL: fake.baseUrl,
          CHAT_DEEPSEEK_API_KEY: 'test-key',
        },
        join(work, 'host', 'dist', 'main.js'),
        join(work, 'host'),
      );
      url = host.url;
      const signup = await request(url)
        .post(`${BASE}/auth/signup`)
        .send({ username: `user-${order}`, password: 'correct horse battery' })
        .expect(201);
      const setCookie = String([signup.headers['set-cookie']].flat()[0]);
      // The cookie goes where our pages and socket are, not to the host's other /api routes.
      expect(setCookie).toMatch(/; Path=\/api\/assistant(;|$)/);
      cookie = setCookie.split(';')[0];
    }, 60_000);

    afterAll(async () => {
      if (host && host.child.exitCode === null) await host.kill('SIGTERM');
    });

    it('our pages are under the real path, with their data, assets and headers there too', async () => {
      expect((await request(url).get(BASE).expect(302)).headers.location).toBe(`${BASE}/chat`);
      const page = await request(url).get(`${BASE}/chat`).set('Cookie', cookie).set('Accept', 'text/html').expect(200);
      expect(page.text).toContain(`data-base-path="${BASE}"`);
      expect(page.text).toContain(`data-ws-path="${BASE}/ws"`);
      expect(page.text).toContain(`src="${BASE}/static/page.js"`);
      expect(page.text).not.toContain('HOST TEMPLATE');
      // Our policy (helmet's default allows framing by the same origin; ours allows none).
      expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      expect(page.headers['referrer-policy']).toBe('same-origin');

      const script = await request(url).get(`${BASE}/static/page.js`).expect(200);
      expect(script.headers['content-type']).toMatch(/javascript/);
      await request(url).get(`${BASE}/vendor/htmx.min.js`).expect(200);
      await request(url).get(`${BASE}/static/no-such-file.js`).expect(404);
      // Nothing of ours at the un-prefixed or doubled paths.
      await request(url).get('/assistant/chat').set('Cookie', cookie).expect(404);
      await request(url).get('/api/api/assistant/chat').set('Cookie', cookie).expect(404);
      expect((await request(url).get(`${BASE}/health`).expect(200)).body).toMatchObject({ status: 'ok' });
    });

    it('a missing chat is our 404 page, not the host view of the same name', async () => {
      for (const id of ['not-a-uuid', '00000000-0000-4000-8000-000000000000']) {
        const res = await request(url).get(`${BASE}/chat/${id}`).set('Cookie', cookie).set('Accept', 'text/html').expect(404);
        expect(res.text).toContain(`href="${BASE}/chat"`);
        expect(res.text).not.toContain('HOST NOT FOUND');
      }
      expect((await request(url).get(`${BASE}/api/chats/not-a-uuid`).set('Cookie', cookie).expect(404)).body).toEqual({
        statusCode: 404,
        error: 'Not Found',
        message: 'no such chat',
      });
    });

    it('the socket streams a turn on the real path', async () => {
      const wsUrl = `${url.replace('http', 'ws')}${BASE}/ws`;
      expect(await upgradeStatus(wsUrl, {})).toBe(401);
      const ws = await WsTestClient.connect(wsUrl, { headers: { cookie } });
      fake.enqueue({ kind: 'stream', content: ['Under ', 'the prefix.'] });
      ws.send({ type: 'user_message', id: 'q1', content: 'Where are you?' });
      const frames: AnyFrame[] = await ws.collect((f) => f.type === 'agent_response_end' || f.type === 'error');
      expect(frames[frames.length - 1]).toMatchObject({ type: 'agent_response_end', status: 'complete', content: 'Under the prefix.' });
      ws.socket.terminate();
    });

    it("the host's EJS page, validation and routes are as they were", async () => {
      const hello = await request(url).get('/api/hello').expect(200);
      expect(hello.text).toContain('<h1>The shop</h1>');
      expect(hello.text).toContain('<li>scarf</li>');
      // Our page values are passed in our render calls: none in the host's templates.
      expect(hello.text).toContain('no chat locals');
      // helmet's own defaults on the host's routes, not our policy.
      expect(hello.headers['content-security-policy']).toContain("frame-ancestors 'self'");

      const short = await request(url).post('/api/items').send({ name: 'x' }).expect(400);
      expect(short.body.message).toEqual(['name must be longer than or equal to 2 characters']);
      const extra = await request(url).post('/api/items').send({ name: 'hat', colour: 'red' }).expect(400);
      expect(extra.body.message).toEqual(['property colour should not exist']);
      // Its global interceptor's envelope on its routes…
      expect((await request(url).post('/api/items').send({ name: 'hat' }).expect(201)).body).toEqual({ data: { created: 'hat' } });
    });

    it("our JSON keeps its documented shape under the host's global interceptor (it skips isChatSystemRoute)", async () => {
      const chats = await request(url).get(`${BASE}/api/chats`).set('Cookie', cookie).expect(200);
      expect(Object.keys(chats.body as object)).toEqual(['chats']);
      expect((await request(url).get(`${BASE}/api/models`).set('Cookie', cookie).expect(200)).body).toHaveProperty('default');
    });

    it('in Chromium, the chat page loads its assets and socket under the prefix and answers', async () => {
      browser ??= await launchChromium();
      const context = await browser.newContext();
      const [name, value] = cookie.split('=');
      await context.addCookies([{ name, value, url: `${url}${BASE}` }]);
      const page = await context.newPage();
      const problems: string[] = [];
      await watchPage(page, problems);
      await page.goto(`${url}${BASE}/chat`);
      await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
      fake.enqueue({ kind: 'stream', content: ['Seen ', 'in the browser.'] });
      await page.locator(BOX).fill('Hello from the page');
      await page.locator(BOX).press('Enter');
      await page.locator('[data-role="assistant"]', { hasText: 'Seen in the browser.' }).waitFor();
      expect(problems).toEqual([]);
      expect(await cspViolations([page])).toEqual([]);
      await context.close();
    }, 60_000);
  });
});

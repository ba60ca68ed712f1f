import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import request from 'supertest';
import { FakeDeepSeek } from './fakes/deepseek.fake';
import { ASSISTANT, BOX, cspViolations, launchChromium, UUID_PATH, watchPage } from './support/browser';
import { compileHost, installPackedLibrary } from './support/packed-library';
import { ServerProcess } from './support/server-process';
import { type AnyFrame, upgradeStatus, WsTestClient } from './support/ws-client';

const HOST = join(__dirname, 'hosts', '19-auth-jwt');

/** What a response is, byte for byte, minus the headers that change with the clock. */
function snapshot(res: request.Response) {
  const headers = { ...res.headers };
  delete headers.date;
  return { status: res.status, headers, body: res.text };
}

/** A JWT's payload without its clock fields (iat, exp). */
function claims(token: string): Record<string, unknown> {
  const payload = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as Record<string, unknown>;
  delete payload.iat;
  delete payload.exp;
  return payload;
}

/**
 * Nest's sample 19-auth-jwt (test/hosts/19-auth-jwt: its global JWT AuthGuard with `@Public()`, its
 * users and routes, code as written) built against the packed library, with the chat mounted under
 * /assistant: a UserResolver over its JWT, its `isPublic` key on our public routes, and a page
 * script that hands our pages the token. Run once without the chat (MOUNT_CHAT=0) to compare.
 */
describe('Nest sample 19-auth-jwt with the chat mounted (e2e, packed library)', () => {
  let work: string;
  let fake: FakeDeepSeek;
  let plain: ServerProcess | undefined;
  let host: ServerProcess | undefined;
  let url = '';
  let browser: Browser | undefined;

  const login = async (base: string, username: string, password: string): Promise<string> =>
    (await request(base).post('/auth/login').send({ username, password }).expect(200)).body.access_token as string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'chat-host19-'));
    const app = join(work, 'host');
    installPackedLibrary(app);
    for (const entry of ['src', 'public', 'tsconfig.json', 'package.json']) cpSync(join(HOST, entry), join(app, entry), { recursive: true });
    compileHost(app);
    fake = await FakeDeepSeek.start();
    const script = join(app, 'dist', 'main.js');
    plain = await ServerProcess.start({ MOUNT_CHAT: '0' }, script, app);
    host = await ServerProcess.start(
      { CHAT_DATABASE_URL: `sqlite:${join(work, 'chat.db')}`, CHAT_DEEPSEEK_BASE_URL: fake.baseUrl, CHAT_DEEPSEEK_API_KEY: 'test-key' },
      script,
      app,
    );
    url = host.url;
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    for (const server of [plain, host]) if (server && server.child.exitCode === null) await server.kill('SIGTERM');
    await fake?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("the sample's routes answer as before mounting the chat: status, headers and body", async () => {
    const before = plain!.url;
    // One token for both (same secret): the profile is then the same bytes.
    const token = await login(before, 'john', 'changeme');
    const same = async (make: (base: string) => request.Test) => expect(snapshot(await make(url))).toEqual(snapshot(await make(before)));
    await same((base) => request(base).get('/auth/profile').set('Authorization', `Bearer ${token}`));
    await same((base) => request(base).get('/auth/profile'));
    await same((base) => request(base).get('/auth/profile').set('Authorization', 'Bearer not-a-jwt'));
    await same((base) => request(base).post('/auth/login').send({ username: 'john', password: 'wrong' }));
    await same((base) => request(base).get('/'));
    await same((base) => request(base).get('/nothing/here'));
    // A new token each time (iat): same status and headers but the ETag, same claims.
    const [ours, theirs] = await Promise.all([url, before].map((base) => request(base).post('/auth/login').send({ username: 'chris', password: 'secret' })));
    const strip = (res: request.Response) => {
      const { body, headers } = snapshot(res);
      delete headers.etag;
      return { status: res.status, headers, length: body.length, claims: claims((res.body as { access_token: string }).access_token) };
    };
    expect(strip(ours)).toEqual(strip(theirs));
    expect(strip(ours).claims).toEqual({ username: 'chris', sub: 2 });
  });

  it("our public routes pass the sample's global guard; the others need its token", async () => {
    expect((await request(url).get('/assistant/health').expect(200)).body).toMatchObject({ status: 'ok' });
    expect((await request(url).get('/assistant/api/chats').expect(401)).body).toMatchObject({ statusCode: 401 });
    const token = await login(url, 'maria', 'guess');
    expect((await request(url).get('/assistant/api/chats').set('Authorization', `Bearer ${token}`).expect(200)).body).toEqual({ chats: [] });
  });

  it('token users own their chats: the other user gets 404, on HTTP and on the socket', async () => {
    const john = await login(url, 'john', 'changeme');
    const chris = await login(url, 'chris', 'secret');
    const wsUrl = `${url.replace('http', 'ws')}/assistant/ws`;
    expect(await upgradeStatus(wsUrl, {})).toBe(401);

    const ws = await WsTestClient.connect(wsUrl, { headers: { Authorization: `Bearer ${john}` } });
    fake.enqueue({ kind: 'stream', content: ['Yours, ', 'john.'] });
    ws.send({ type: 'user_message', id: 'q1', content: 'Whose chat is this?' });
    const frames: AnyFrame[] = await ws.collect((f) => f.type === 'agent_response_end' || f.type === 'error');
    const end = frames[frames.length - 1];
    expect(end).toMatchObject({ type: 'agent_response_end', status: 'complete', content: 'Yours, john.' });
    ws.socket.terminate();
    const chatId = String(end.chat_id);

    const asJohn = await request(url).get(`/assistant/api/chats/${chatId}`).set('Authorization', `Bearer ${john}`).expect(200);
    expect(asJohn.body).toMatchObject({ id: chatId });
    const asChris = await request(url).get(`/assistant/api/chats/${chatId}`).set('Authorization', `Bearer ${chris}`).expect(404);
    expect(asChris.body).toEqual({ statusCode: 404, error: 'Not Found', message: 'no such chat' });
    expect((await request(url).get('/assistant/api/chats').set('Authorization', `Bearer ${chris}`).expect(200)).body).toEqual({ chats: [] });

    const other = await WsTestClient.connect(wsUrl, { headers: { Authorization: `Bearer ${chris}` } });
    other.send({ type: 'subscribe', chat_id: chatId });
    expect(await other.next((f) => f.type === 'error')).toMatchObject({ code: 'not_found' });
    other.socket.terminate();

    // A share link is public: the sample's guard lets the share page through.
    const share = await request(url).post(`/assistant/api/chats/${chatId}/share`).set('Authorization', `Bearer ${john}`).expect(201);
    const page = await request(url)
      .get(`/assistant/share/${(share.body as { token: string }).token}`)
      .expect(200);
    expect(page.text).toContain('Yours, john.');
  });

  it('in Chromium, the chat page works with the token from the host script: send, see the answer', async () => {
    browser = await launchChromium();
    const context = await browser.newContext();
    const token = await login(url, 'john', 'changeme');
    await context.addInitScript((value) => localStorage.setItem('access_token', value), token);
    const page = await context.newPage();
    const problems: string[] = [];
    // The first navigation carries no token: its 401 (the page that loads itself again) is expected.
    await watchPage(page, problems, /status of 401/);
    const first = await page.goto(`${url}/assistant/chat`);
    // The navigation itself carried no token (401: the page that loads itself again with it).
    expect(first?.status()).toBe(401);
    await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
    fake.enqueue({ kind: 'stream', content: ['Hello ', 'with a token.'] });
    await page.locator(BOX).fill('Can you hear me?');
    await page.locator(BOX).press('Enter');
    await page.locator(ASSISTANT, { hasText: 'Hello with a token.' }).waitFor();
    await page.waitForURL(UUID_PATH);
    const chatId = page.url().split('/').pop()!;
    // The chat is john's.
    await request(url).get(`/assistant/api/chats/${chatId}`).set('Authorization', `Bearer ${token}`).expect(200);
    expect(problems).toEqual([]);
    expect(await cspViolations([page])).toEqual([]);
    await context.close();
  }, 60_000);

  it("in Chromium, Back to a chat carries the token: htmx's history restore asks the server with it", async () => {
    // The chat page keeps no htmx history cache (historyCacheSize 0): every Back is a cache miss,
    // which htmx fetches with its own request, past htmx:configRequest.
    browser ??= await launchChromium();
    const context = await browser.newContext();
    const token = await login(url, 'chris', 'secret');
    await context.addInitScript((value) => localStorage.setItem('access_token', value), token);
    const page = await context.newPage();
    const problems: string[] = [];
    await watchPage(page, problems, /status of 401/);
    /** The Authorization header of each history restore request the page made. */
    const restores: (string | undefined)[] = [];
    page.on('request', (req) => {
      const headers = req.headers();
      if (headers['hx-history-restore-request'] === 'true') restores.push(headers.authorization);
    });
    await page.goto(`${url}/assistant/chat`);
    await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
    fake.enqueue({ kind: 'stream', content: ['Still ', 'here after Back.'] });
    await page.locator(BOX).fill('Remember me');
    await page.locator(BOX).press('Enter');
    await page.locator(ASSISTANT, { hasText: 'Still here after Back.' }).waitFor();
    await page.waitForURL(UUID_PATH);
    const chatUrl = page.url();

    // A new chat (htmx, pushed into history), then Back to the chat.
    await page.locator('[data-new-chat]').click();
    await page.waitForURL(`${url}/assistant/chat`);
    await page.locator(ASSISTANT).waitFor({ state: 'detached' });
    await page.goBack();
    await page.waitForURL(chatUrl);
    await page.locator(ASSISTANT, { hasText: 'Still here after Back.' }).waitFor({ timeout: 10_000 });
    expect(restores).toEqual([`Bearer ${token}`]);
    // The restored page works: its socket connects and the chat goes on.
    await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
    fake.enqueue({ kind: 'stream', content: ['And ', 'on.'] });
    await page.locator(BOX).fill('Go on');
    await page.locator(BOX).press('Enter');
    await page.locator(ASSISTANT, { hasText: 'And on.' }).waitFor();
    expect(page.url()).toBe(chatUrl);
    expect(problems).toEqual([]);
    expect(await cspViolations([page])).toEqual([]);
    await context.close();
  }, 60_000);
});

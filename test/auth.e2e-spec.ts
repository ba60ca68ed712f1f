import request from 'supertest';
import { FakeDeepSeek } from './fakes/deepseek.fake';
import { type RunningApp, startApp } from './support/app';
import { upgradeStatus, WsTestClient } from './support/ws-client';

describe('accounts, ownership and limits (e2e)', () => {
  let fake: FakeDeepSeek;
  let server: RunningApp;

  beforeAll(async () => {
    fake = await FakeDeepSeek.start();
    server = await startApp({
      AUTH_MODE: 'local',
      DEEPSEEK_BASE_URL: fake.baseUrl,
      DEEPSEEK_API_KEY: 'test-key',
      RATE_LIMIT_PER_MINUTE: '4',
      SIGNUPS_PER_HOUR: '100',
    });
  });
  afterAll(async () => {
    await server.close();
    await fake.close();
  });

  async function signup(username: string, password = 'correct horse battery'): Promise<string> {
    const res = await request(server.url).post('/auth/signup').send({ username, password }).expect(201);
    expect(res.body).toEqual({ id: expect.any(String), username });
    return cookieOf(res.headers['set-cookie']);
  }
  const cookieOf = (setCookie: string | string[] | undefined) => String([setCookie].flat()[0]).split(';')[0];
  const connect = (cookie: string) => WsTestClient.connect(server.wsUrl, { headers: { cookie } });

  let alice = '';
  let bob = '';

  it('signs up with a session cookie that is HttpOnly and SameSite=Lax', async () => {
    const res = await request(server.url).post('/auth/signup').send({ username: 'alice', password: 'correct horse battery' }).expect(201);
    const setCookie = String([res.headers['set-cookie']].flat()[0]);
    expect(setCookie).toMatch(/^chat_session=[A-Za-z0-9_-]{40,};/);
    expect(setCookie).toMatch(/HttpOnly/i);
    expect(setCookie).toMatch(/SameSite=Lax/i);
    expect(setCookie).toMatch(/Path=\//);
    expect(setCookie).not.toMatch(/Secure/); // plain http here; behind https the flag is set
    alice = cookieOf(res.headers['set-cookie']);
    bob = await signup('bob');
  });

  it('refuses a taken name (any case), a short password and a bad name', async () => {
    await request(server.url).post('/auth/signup').send({ username: 'ALICE', password: 'another long one' }).expect(409);
    const short = await request(server.url).post('/auth/signup').send({ username: 'carol', password: 'short' }).expect(400);
    expect(short.body.message).toMatch(/password/);
    await request(server.url).post('/auth/signup').send({ username: '<script>', password: 'long enough pass' }).expect(400);
  });

  it('answers a wrong password and an unknown user the same', async () => {
    const wrong = await request(server.url).post('/auth/login').send({ username: 'alice', password: 'not the password' }).expect(401);
    const unknown = await request(server.url).post('/auth/login').send({ username: 'nobody', password: 'not the password' }).expect(401);
    expect(wrong.body).toEqual(unknown.body);
    const ok = await request(server.url).post('/auth/login').send({ username: 'Alice', password: 'correct horse battery' }).expect(200);
    expect(ok.body.username).toBe('alice');
  });

  it('signs in with a form and is sent to /chat', async () => {
    const res = await request(server.url).post('/auth/login').type('form').send({ username: 'bob', password: 'correct horse battery' }).expect(303);
    expect(res.headers.location).toBe('/chat');
    const page = await request(server.url).get('/chat').set('Cookie', cookieOf(res.headers['set-cookie'])).expect(200);
    expect(page.text).toContain('data-chat-form');
  });

  it('keeps everything but login, health and static files behind a session', async () => {
    await request(server.url).get('/chat').expect(303).expect('Location', '/login');
    const htmx = await request(server.url).get('/chat').set('HX-Request', 'true').expect(401);
    expect(htmx.headers['hx-redirect']).toBe('/login');
    await request(server.url).get('/api/chats').expect(401);
    await request(server.url).get('/login').expect(200);
    await request(server.url).get('/signup').expect(200);
    await request(server.url).get('/health').expect(200);
    await request(server.url).get('/static/chat.css').expect(200);
    expect(await upgradeStatus(server.wsUrl, {})).toBe(401);
    expect(await upgradeStatus(server.wsUrl, { cookie: 'chat_session=forged' })).toBe(401);
    expect(await upgradeStatus(server.wsUrl, { cookie: alice })).toBe(101);
  });

  it('refuses a hostile Origin on the upgrade and on state-changing requests', async () => {
    const own = server.url;
    expect(await upgradeStatus(server.wsUrl, { cookie: alice, origin: 'https://evil.example' })).toBe(403);
    expect(await upgradeStatus(server.wsUrl, { cookie: alice, origin: own })).toBe(101);
    await request(server.url).post('/auth/logout').set('Cookie', alice).set('Origin', 'https://evil.example').expect(403);
    await request(server.url)
      .post('/auth/login')
      .set('Origin', 'https://evil.example')
      .send({ username: 'alice', password: 'correct horse battery' })
      .expect(403);
  });

  it('takes a same-origin post as Chromium marks it (Origin: null + Sec-Fetch-Site: same-origin); refuses cross-site ones', async () => {
    const form = { username: 'alice', password: 'correct horse battery' };
    // Chromium under a no-referrer policy: Origin null, but the browser's own Sec-Fetch-Site says same-origin.
    const ok = await request(server.url).post('/auth/login').type('form').set('Origin', 'null').set('Sec-Fetch-Site', 'same-origin').send(form).expect(303);
    expect(ok.headers.location).toBe('/chat');
    await request(server.url).post('/auth/login').set('Origin', 'null').send(form).expect(403);
    await request(server.url).post('/auth/login').set('Origin', 'null').set('Sec-Fetch-Site', 'cross-site').send(form).expect(403);
    await request(server.url).post('/auth/login').set('Sec-Fetch-Site', 'cross-site').send(form).expect(403);
    await request(server.url).post('/auth/login').set('Origin', 'https://evil.example').set('Sec-Fetch-Site', 'same-site').send(form).expect(403);
    await request(server.url).post('/auth/logout').set('Cookie', alice).set('Origin', 'null').set('Sec-Fetch-Site', 'cross-site').expect(403);
    expect(await upgradeStatus(server.wsUrl, { cookie: alice, origin: 'null', 'sec-fetch-site': 'cross-site' })).toBe(403);
    expect(await upgradeStatus(server.wsUrl, { cookie: alice, origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' })).toBe(403);
    await request(server.url).get('/api/chats').set('Cookie', alice).expect(200); // the refused logout ended nothing
    // Our pages keep their origin on same-origin requests and send nothing elsewhere.
    const page = await request(server.url).get('/login').expect(200);
    expect(page.headers['referrer-policy']).toBe('same-origin');
  });

  it('shows a refused form again with the message and the typed name (escaped); JSON clients keep JSON', async () => {
    const html = (res: request.Response) => {
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      return res.text;
    };
    const wrong = html(await request(server.url).post('/auth/login').type('form').send({ username: 'alice', password: 'not the password' }).expect(401));
    expect(wrong).toContain('data-auth-error>wrong username or password<');
    expect(wrong).toContain('value="alice"');
    const short = html(await request(server.url).post('/auth/signup').type('form').send({ username: 'zed', password: 'short' }).expect(400));
    expect(short).toMatch(/data-auth-error>[^<]*password must be longer than or equal to 10 characters/);
    expect(short).toContain('value="zed"');
    expect(short).toContain('data-auth-form="signup"');
    const taken = html(await request(server.url).post('/auth/signup').type('form').send({ username: 'ALICE', password: 'long enough pass' }).expect(409));
    expect(taken).toContain('data-auth-error>that username is taken<');
    const hostile = html(await request(server.url).post('/auth/signup').type('form').send({ username: '"><b>x', password: 'long enough pass' }).expect(400));
    expect(hostile).toContain('value="&quot;&gt;&lt;b&gt;x"');
    expect(hostile).not.toContain('<b>x');
    // Nothing was written: the refused names cannot sign in.
    await request(server.url).post('/auth/login').send({ username: 'zed', password: 'short' }).expect(401);
    // JSON keeps JSON.
    const json = await request(server.url).post('/auth/login').send({ username: 'alice', password: 'not the password' }).expect(401);
    expect(json.body).toEqual({ statusCode: 401, error: 'Unauthorized', message: 'wrong username or password' });
  });

  it("never lets one user reach another's chat, over HTTP or WS", async () => {
    const a = await connect(alice);
    fake.enqueue({ kind: 'stream', content: ['private ', 'answer'], delayMs: 5 });
    a.send({ type: 'user_message', id: 'm', content: 'alice secret' });
    const end = await a.nextOfType('agent_response_end');
    const chat = end.chat_id;
    a.close();

    for (const [method, path] of [
      ['get', `/api/chats/${chat}`],
      ['patch', `/api/chats/${chat}`],
      ['delete', `/api/chats/${chat}`],
      ['get', `/chat/${chat}`],
    ] as const) {
      await request(server.url)[method](path).set('Cookie', bob).send({ title: 'mine now' }).expect(404);
    }
    const list = await request(server.url).get('/api/chats').set('Cookie', bob).expect(200);
    expect(list.body.chats.map((c: { id: string }) => c.id)).not.toContain(chat);

    const b = await connect(bob);
    const before = fake.requests.length;
    for (const frame of [
      { type: 'subscribe', chat_id: chat },
      { type: 'resume', message_id: end.message_id, after_seq: 0 },
      { type: 'stop', message_id: end.message_id },
      { type: 'user_message', content: 'let me in', chat_id: chat },
    ]) {
      b.send({ ...frame, id: frame.type });
      expect(await b.nextOfType('error')).toMatchObject({ code: 'not_found', id: frame.type });
    }
    expect(fake.requests.length).toBe(before);
    expect(b.frames.some((f) => f.type === 'agent_response_end' || f.type === 'subscribed')).toBe(false);
    b.close();
    // Alice still sees her chat.
    const mine = await request(server.url).get(`/api/chats/${chat}`).set('Cookie', alice).expect(200);
    expect(mine.body.messages[1].content).toBe('private answer');
  });

  it('rate-limits messages per user with retry_after_ms, per user', async () => {
    const carol = await signup('carol');
    const ws = await connect(carol);
    for (let i = 0; i < 4; i++) {
      ws.send({ type: 'user_message', id: `ok${i}`, content: `hello ${i}` });
      await ws.next((f) => f.type === 'agent_response_end' && f.id === `ok${i}`);
    }
    ws.send({ type: 'user_message', id: 'over', content: 'one too many' });
    const limited = await ws.nextOfType('error');
    expect(limited).toMatchObject({ code: 'rate_limited', id: 'over' });
    expect(limited.retry_after_ms).toBeGreaterThan(0);
    expect(limited.retry_after_ms).toBeLessThanOrEqual(60_000);
    // Another user is not affected.
    const d = await connect(await signup('dave'));
    d.send({ type: 'user_message', id: 'd', content: 'fine' });
    await d.next((f) => f.type === 'agent_response_end' && f.id === 'd');
    d.close();
    ws.close();
  });

  it('shows /metrics to the admin (the first account) only', async () => {
    await request(server.url).get('/metrics').expect(401);
    await request(server.url).get('/metrics').set('Cookie', bob).expect(403);
    const res = await request(server.url).get('/metrics').set('Cookie', alice).expect(200);
    expect(res.text).toContain('chat_open_sockets');
  });

  it('caps open sockets per user (WS_MAX_SOCKETS_PER_USER, 20 by default)', async () => {
    const session = await signup('frank');
    const sockets = await Promise.all(Array.from({ length: 20 }, () => connect(session)));
    expect(await upgradeStatus(server.wsUrl, { cookie: session })).toBe(429);
    expect(await upgradeStatus(server.wsUrl, { cookie: alice })).toBe(101); // others are not affected
    sockets[0].close();
    await sockets[0].closed;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await upgradeStatus(server.wsUrl, { cookie: session })).toBe(101);
    for (const socket of sockets.slice(1)) socket.close();
  });

  it('limits login attempts per name', async () => {
    let last = 0;
    for (let i = 0; i < 12; i++) {
      last = (
        await request(server.url)
          .post('/auth/login')
          .send({ username: 'bob', password: `wrong ${i} attempt` })
      ).status;
    }
    expect(last).toBe(429);
  });

  it('changes a password given the current one: other sessions end and their sockets close, this one stays', async () => {
    const first = await signup('gina');
    const login = (password: string) => request(server.url).post('/auth/login').send({ username: 'gina', password });
    const second = cookieOf((await login('correct horse battery').expect(200)).headers['set-cookie']);
    const ws = await connect(second);
    const change = (body: object, cookie = first) => request(server.url).post('/auth/password').set('Cookie', cookie).send(body);
    const refused = await change({ current_password: 'not the one', new_password: 'a new long passphrase' }).expect(403);
    expect(refused.body.message).toBe('the current password is wrong');
    await change({ current_password: 'correct horse battery', new_password: 'short' }).expect(400);
    await request(server.url).post('/auth/password').send({ current_password: 'correct horse battery', new_password: 'a new long passphrase' }).expect(401);
    await request(server.url).get('/api/chats').set('Cookie', second).expect(200); // refusals changed nothing
    await change({ current_password: 'correct horse battery', new_password: 'a new long passphrase' }).expect(204);
    expect(await ws.closed).toBe(4401);
    await request(server.url).get('/api/chats').set('Cookie', second).expect(401);
    await request(server.url).get('/api/chats').set('Cookie', first).expect(200);
    await login('correct horse battery').expect(401);
    await login('a new long passphrase').expect(200);
  });

  it('lets the admin alone open and close sign-up, effective at once', async () => {
    const set = (cookie: string, open: boolean) => request(server.url).post('/auth/signup-open').set('Cookie', cookie).send({ open });
    await set(bob, false).expect(403);
    expect((await set(alice, false).expect(200)).body).toEqual({ signup_open: false });
    const refused = await request(server.url).post('/auth/signup').send({ username: 'henry', password: 'correct horse battery' }).expect(403);
    expect(refused.body.message).toBe('sign-up is closed');
    await request(server.url).post('/auth/login').send({ username: 'henry', password: 'correct horse battery' }).expect(401);
    expect((await request(server.url).get('/login').expect(200)).text).not.toContain('Create an account');
    expect((await request(server.url).get('/chat').set('Cookie', alice).expect(200)).text).toContain('data-signup-state="closed"');
    expect((await set(alice, true).expect(200)).body).toEqual({ signup_open: true });
    await signup('henry');
  });

  it('logout ends the session on the server and closes its sockets', async () => {
    const session = await signup('erin');
    const ws = await connect(session);
    await request(server.url).post('/auth/logout').set('Cookie', session).expect(204);
    expect(await ws.closed).toBe(4401);
    await request(server.url).get('/api/chats').set('Cookie', session).expect(401);
    expect(await upgradeStatus(server.wsUrl, { cookie: session })).toBe(401);
    // Alice's session is untouched.
    await request(server.url).get('/api/chats').set('Cookie', alice).expect(200);
  });
});

const cookieOf = (setCookie: string | string[] | undefined) => String([setCookie].flat()[0]).split(';')[0];

describe('closed sign-up (e2e)', () => {
  it('lets the first account (the admin) in, then refuses sign-up', async () => {
    const server = await startApp({ AUTH_MODE: 'local', ALLOW_SIGNUP: 'false' });
    try {
      await request(server.url).post('/auth/signup').send({ username: 'admin', password: 'correct horse battery' }).expect(201);
      const admin = cookieOf(
        (await request(server.url).post('/auth/login').send({ username: 'admin', password: 'correct horse battery' }).expect(200)).headers['set-cookie'],
      );
      await request(server.url).post('/auth/signup').send({ username: 'other', password: 'correct horse battery' }).expect(403);
      // The admin's switch cannot open what ALLOW_SIGNUP=false closed.
      expect((await request(server.url).post('/auth/signup-open').set('Cookie', admin).send({ open: true }).expect(200)).body).toEqual({ signup_open: false });
      await request(server.url).post('/auth/signup').send({ username: 'other', password: 'correct horse battery' }).expect(403);
    } finally {
      await server.close();
    }
  });
});

describe('sign-up and login limits per client address, behind a proxy (e2e)', () => {
  let server: RunningApp;
  const password = 'correct horse battery';
  beforeAll(async () => {
    server = await startApp({ AUTH_MODE: 'local', SIGNUPS_PER_HOUR: '2', TRUST_PROXY: 'loopback' });
  });
  afterAll(() => server.close());
  const post = (path: string, from: string, body: object) => request(server.url).post(path).set('X-Forwarded-For', from).send(body);

  it('limits sign-ups per client address; the refused one writes nothing', async () => {
    await post('/auth/signup', '203.0.113.1', { username: 'ann1', password }).expect(201);
    await post('/auth/signup', '203.0.113.1', { username: 'ann2', password }).expect(201);
    const refused = await post('/auth/signup', '203.0.113.1', { username: 'ann3', password }).expect(429);
    expect(refused.body.message).toMatch(/^too many new accounts from this address; try again in \d+ min$/);
    await post('/auth/login', '203.0.113.5', { username: 'ann3', password }).expect(401);
    await post('/auth/signup', '203.0.113.2', { username: 'ben1', password }).expect(201);
  });

  it('counts only failures, per address and name: a stranger cannot lock a known user out from elsewhere', async () => {
    for (let i = 0; i < 10; i++) await post('/auth/login', '198.51.100.7', { username: 'ann1', password: `wrong ${i}` }).expect(401);
    const locked = await post('/auth/login', '198.51.100.7', { username: 'ann1', password }).expect(429);
    expect(locked.body.message).toMatch(/^too many failed sign-ins; try again in \d+ min$/);
    // A person sees it on the form, with the name kept.
    const form = await request(server.url)
      .post('/auth/login')
      .type('form')
      .set('X-Forwarded-For', '198.51.100.7')
      .send({ username: 'ann1', password })
      .expect(429);
    expect(form.text).toMatch(/data-auth-error>too many failed sign-ins; try again in \d+ min</);
    expect(form.text).toContain('value="ann1"');
    // The owner, from their own address, and other names from the stranger's address, still get in.
    await post('/auth/login', '203.0.113.1', { username: 'ann1', password }).expect(200);
    await post('/auth/login', '198.51.100.7', { username: 'ann2', password }).expect(200);
    // Successes do not count.
    for (let i = 0; i < 12; i++) await post('/auth/login', '203.0.113.9', { username: 'ben1', password }).expect(200);
  });
});

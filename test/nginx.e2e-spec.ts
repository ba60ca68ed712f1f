/**
 * The sample nginx config of docs/nginx.conf, run for real in front of two instances (PostgreSQL +
 * Redis) with accounts (the default AUTH_MODE=local) and TRUST_PROXY as the README says: the real
 * forms in Chromium, pages, API and the WebSocket upgrade pass through, limits see each client's own
 * address, and a stream resumes exactly whichever instance the balancer picks.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { FakeDeepSeek } from './fakes/deepseek.fake';
import { type RunningApp, startApp } from './support/app';
import { launchChromium, PASSWORD, signInThroughForm } from './support/browser';
import { TEST_POSTGRES_URL, TEST_REDIS_URL, TEST_SCHEMA_PREFIX } from './support/databases';
import { type AnyFrame, WsTestClient } from './support/ws-client';

const NGINX = '/usr/sbin/nginx';
const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i} `);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

describe('two instances behind the sample nginx config (e2e)', () => {
  let fake: FakeDeepSeek;
  let a: RunningApp;
  let b: RunningApp;
  let nginx: ChildProcess;
  let proxy = '';
  let cookie = '';
  const connect = () => WsTestClient.connect(`${proxy.replace('http', 'ws')}/ws`, { headers: { cookie } });

  beforeAll(async () => {
    if (!existsSync(NGINX)) throw new Error(`nginx is missing at ${NGINX}: apt-get install -y nginx-light (CI installs it)`);
    const run = randomBytes(5).toString('hex');
    fake = await FakeDeepSeek.start();
    const settings = {
      DATABASE_URL: `${TEST_POSTGRES_URL}?schema=${TEST_SCHEMA_PREFIX}nginx_${run}`,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_PREFIX: `chattest:${run}:`,
      DEEPSEEK_BASE_URL: fake.baseUrl,
      DEEPSEEK_API_KEY: 'test-key',
      AUTH_MODE: 'local',
      TRUST_PROXY: 'loopback',
    };
    a = await startApp(settings);
    b = await startApp(settings);
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'chat-nginx-'));
    mkdirSync(join(dir, 'tmp'));
    const sample = readFileSync(join(__dirname, '..', 'docs', 'nginx.conf'), 'utf8')
      .replace('server 127.0.0.1:3001;', `server ${new URL(a.url).host};`)
      .replace('server 127.0.0.1:3002;', `server ${new URL(b.url).host};`)
      .replace('listen 8080;', `listen 127.0.0.1:${port};`);
    expect(sample).toContain(new URL(b.url).host);
    const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((name) => `${name}_temp_path ${dir}/tmp/${name};`).join('\n');
    writeFileSync(
      join(dir, 'nginx.conf'),
      `user root;\ndaemon off;\npid ${dir}/nginx.pid;\nerror_log ${dir}/error.log warn;\nevents {}\nhttp {\naccess_log off;\n${temp}\n${sample}\n}\n`,
    );
    nginx = spawn(NGINX, ['-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: 'ignore' });
    proxy = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 50; i++) {
      try {
        await request(proxy).get('/health');
        const res = await request(proxy).post('/auth/signup').send({ username: 'nginx', password: PASSWORD }).expect(201);
        cookie = String([res.headers['set-cookie']].flat()[0]).split(';')[0];
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    throw new Error(`nginx did not start: ${readFileSync(join(dir, 'error.log'), 'utf8')}`);
  }, 60_000);

  afterAll(async () => {
    nginx?.kill('SIGTERM');
    await a?.close();
    await b?.close();
    await fake?.close();
  });

  it('passes pages, the API and the WebSocket upgrade through', async () => {
    await request(proxy).get('/health').expect(200);
    await request(proxy).get('/chat').set('Cookie', cookie).expect(200).expect('Content-Type', /html/);
    const ws = await connect();
    ws.send({ type: 'user_message', id: 'n', content: 'through nginx' });
    const end = await ws.nextOfType('agent_response_end');
    expect(end.status).toBe('complete');
    ws.close();
    // Whichever instance answers, the chat is there.
    for (let i = 0; i < 4; i++) await request(proxy).get(`/api/chats/${end.chat_id}`).set('Cookie', cookie).expect(200);
  });

  it('signs up and in through the real forms in Chromium, and the page socket connects', async () => {
    const browser = await launchChromium();
    try {
      const context = await browser.newContext();
      await signInThroughForm(context, proxy, 'chromium', 'signup');
      const page = await context.newPage();
      await page.goto(`${proxy}/chat`);
      await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' });
      await Promise.all([
        page.waitForURL(`${proxy}/login`),
        page
          .locator('[data-account-menu] summary')
          .click()
          .then(() => page.locator('[data-logout]').click()),
      ]);
      await signInThroughForm(context, proxy, 'chromium');
    } finally {
      await browser.close();
    }
  }, 60_000);

  it('limits see the client behind nginx: failures from one address do not lock the user out elsewhere', async () => {
    const login = (from: string, password: string) => request(proxy).post('/auth/login').set('X-Forwarded-For', from).send({ username: 'nginx', password });
    for (let i = 0; i < 10; i++) await login('198.51.100.7', `wrong ${i}`).expect(401);
    await login('198.51.100.7', PASSWORD).expect(429);
    await login('203.0.113.1', PASSWORD).expect(200);
  });

  it('a stream resumed on another connection through the balancer is exact', async () => {
    fake.enqueue({ kind: 'stream', content: words(40), delayMs: 15 });
    const first = await connect();
    first.send({ type: 'user_message', id: 'r', content: 'resume through nginx' });
    const head: AnyFrame[] = [];
    for (;;) {
      const frame = await first.next((f) => f.type === 'agent_response');
      head.push(frame);
      if (frame.seq === 5) break;
    }
    first.close();
    const second = await connect();
    second.send({ type: 'resume', message_id: head[0].message_id, after_seq: 5 });
    const rest = await second.collect((f) => f.type === 'agent_response_end');
    const pieces = rest.filter((f) => f.type === 'agent_response');
    expect(pieces[0].seq).toBe(6);
    expect(
      head
        .concat(pieces)
        .map((f) => f.content)
        .join(''),
    ).toBe(words(40).join(''));
    expect(rest[rest.length - 1]).toMatchObject({ status: 'complete', content: words(40).join('') });
    second.close();
  });
});

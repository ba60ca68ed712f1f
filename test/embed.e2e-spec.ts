import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { IsOptional, IsString, MaxLength } from 'class-validator';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Observable, of } from 'rxjs';
import request from 'supertest';
import {
  AppError,
  ChatSystemModule,
  configureApp,
  ConnectionRegistry,
  Frame,
  FrameGateway,
  LlmEvent,
  LlmProvider,
  LlmRequest,
  MessageHandler,
  OnFrame,
} from '../src';
import { FakeDeepSeek } from './fakes/deepseek.fake';
import { launchChromium } from './support/browser';
import { tempDatabaseUrl } from './support/app';
import { compileHost, installPackedLibrary } from './support/packed-library';
import { ServerProcess } from './support/server-process';
import { AnyFrame, upgradeStatus, WsTestClient } from './support/ws-client';

const ROOT = join(__dirname, '..');

/** One whole chat turn on `ws`: the frames up to its end (or its error), the end frame last. */
function turn(ws: WsTestClient, id: string, frame: object): Promise<AnyFrame[]> {
  ws.send({ type: 'user_message', id, ...frame });
  return ws.collect((f) => f.type === 'agent_response_end' || (f.type === 'error' && f.id === id));
}

/**
 * The library as a host gets it: built and packed with `npm pack` (once per content of src/, shared by
 * every spec file: test/support/packed-library.ts), unpacked into a host's node_modules (the other
 * packages are links to the project's), then examples/host-app built with tsc against it and started
 * as its own process.
 */
describe('embedding: examples/host-app on the packed library (e2e)', () => {
  let work: string;
  let fake: FakeDeepSeek;
  let host: ServerProcess | undefined;
  let url = '';
  let wsUrl = '';
  const alice = { Authorization: 'Bearer alice-token' };
  const bob = { Authorization: 'Bearer bob-token' };

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'chat-embed-'));
    const app = join(work, 'host');
    installPackedLibrary(app);
    for (const entry of ['src', 'tsconfig.json', 'package.json']) cpSync(join(ROOT, 'examples', 'host-app', entry), join(app, entry), { recursive: true });
    compileHost(app);

    fake = await FakeDeepSeek.start();
    host = await ServerProcess.start(
      {
        ASSISTANT_BASE_URL: fake.baseUrl,
        ASSISTANT_API_KEY: 'test-key',
        ASSISTANT_DATABASE_URL: `sqlite:${join(work, 'assistant.db')}`,
        // The host's own settings, under the names the chat would read standalone: not ours.
        DATABASE_URL: 'mysql://shop:secret@127.0.0.1:3306/shop',
        DEEPSEEK_API_KEY: 'x',
        DEEPSEEK_BASE_URL: 'http://127.0.0.1:9/not-ours',
      },
      join(app, 'dist', 'main.js'),
      app,
    );
    url = host.url;
    wsUrl = `${url.replace('http', 'ws')}/assistant/ws`;
  }, 240_000);

  afterAll(async () => {
    if (host && host.child.exitCode === null) await host.kill('SIGTERM');
    await fake?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('packs an installable library: dist, views and public, no test code', () => {
    const installed = join(work, 'host', 'node_modules', 'nest-chat-system');
    expect(readdirSync(installed).sort()).toEqual(['README.md', 'dist', 'package.json', 'public', 'views']);
    expect(readdirSync(join(installed, 'dist'))).toEqual(expect.arrayContaining(['index.js', 'index.d.ts', 'chat-system.module.js']));
    expect(readdirSync(join(installed, 'dist')).some((name) => /spec|\.map$/.test(name))).toBe(false);
  });

  it("declares Nest and its companions as the host's (peers), so the host keeps one copy of @nestjs/common", () => {
    const app = join(work, 'host');
    const installed = join(app, 'node_modules', 'nest-chat-system');
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as Record<string, any>;
    expect(manifest.private).toBeUndefined();
    const shared = [
      '@nestjs/common',
      '@nestjs/core',
      '@nestjs/platform-express',
      '@nestjs/platform-ws',
      '@nestjs/websockets',
      'rxjs',
      'reflect-metadata',
      'class-validator',
      'class-transformer',
    ];
    for (const name of [...shared, 'better-sqlite3']) {
      expect(manifest.dependencies[name]).toBeUndefined();
      expect(manifest.peerDependencies[name]).toEqual(expect.any(String));
    }
    expect(Object.keys(manifest.dependencies).filter((name) => name.startsWith('@nestjs/'))).toEqual([]);
    expect(manifest.peerDependenciesMeta).toEqual({ 'better-sqlite3': { optional: true } });
    // What the library's own `require` finds is what the host's finds.
    for (const name of ['@nestjs/common', '@nestjs/core', 'rxjs', 'class-validator']) {
      expect(require.resolve(name, { paths: [join(installed, 'dist')] })).toBe(require.resolve(name, { paths: [app] }));
    }
  });

  it("keeps the host's own routes as they were: its guard, its errors, no chat headers", async () => {
    await request(url).get('/api/status').expect(200, { ok: true }); // public host route: not behind our guard
    const orders = await request(url).get('/api/orders').set(alice).expect(200);
    expect(orders.body.orders.map((o: { item: string }) => o.item)).toEqual(['keyboard', 'mouse']);
    // The host's guard answers with Nest's own body: our error filter is not global.
    const refused = await request(url).get('/api/orders').expect(401);
    expect(refused.body).toEqual({ message: 'Unauthorized', statusCode: 401 });
    expect(refused.headers['content-security-policy']).toBeUndefined();
    const missing = await request(url).get('/nowhere').set('Accept', 'text/html').expect(404);
    expect(missing.body).toMatchObject({ statusCode: 404, message: 'Cannot GET /nowhere' });
  });

  it('serves the pages under /assistant with prefixed links and assets, for host users only', async () => {
    await request(url).get('/assistant').set(alice).expect(302).expect('Location', '/assistant/chat');
    const page = await request(url).get('/assistant/chat').set(alice).expect(200).expect('Content-Type', /html/);
    expect(page.headers['content-security-policy']).toMatch(/script-src 'self'/);
    expect(page.text).toContain('data-base-path="/assistant"');
    expect(page.text).toContain('data-ws-path="/assistant/ws"');
    expect(page.text).toContain('data-login-path=""');
    const refs = [...page.text.matchAll(/(?:href|src|hx-get|action)="(\/[^"]*)"/g)].map((m) => m[1]);
    expect(refs.length).toBeGreaterThan(8);
    for (const ref of refs) expect(ref).toMatch(/^\/assistant\//);
    for (const asset of ['/assistant/static/chat.js', '/assistant/static/chat.css', '/assistant/vendor/htmx.min.js', '/assistant/vendor/marked.umd.js']) {
      expect(refs).toContain(asset);
      await request(url).get(asset).expect(200);
    }
    await request(url).get('/static/chat.js').expect(404);
    // No session of ours: without the host's credentials a page is 401, and there is no login page.
    await request(url).get('/assistant/chat').expect(401);
    await request(url).get('/assistant/login').set(alice).expect(404);
    await request(url).get('/assistant/api/chats').expect(401);
  });

  it("streams the chat under the host's users; one user cannot see another's chats", async () => {
    const a = await WsTestClient.connect(wsUrl, { headers: alice });
    fake.enqueue({ kind: 'stream', content: ['Orders ', 'ship ', 'daily.'] });
    const frames = await turn(a, 'q1', { content: 'When do orders ship?' });
    const end = frames[frames.length - 1];
    expect(end).toMatchObject({ type: 'agent_response_end', status: 'complete', content: 'Orders ship daily.' });
    expect(
      frames
        .filter((f) => f.type === 'agent_response')
        .map((f) => f.content)
        .join(''),
    ).toBe('Orders ship daily.');
    const chatId = end.chat_id as string;

    const mine = await request(url).get('/assistant/api/chats').set(alice).expect(200);
    expect(mine.body.chats.map((c: { id: string }) => c.id)).toEqual([chatId]);
    const page = await request(url).get(`/assistant/chat/${chatId}`).set(alice).expect(200);
    expect(page.text).toContain(`href="/assistant/chat/${chatId}"`);

    const theirs = await request(url).get('/assistant/api/chats').set(bob).expect(200);
    expect(theirs.body.chats).toEqual([]);
    await request(url).get(`/assistant/api/chats/${chatId}`).set(bob).expect(404);
    const b = await WsTestClient.connect(wsUrl, { headers: bob });
    b.send({ type: 'subscribe', id: 's', chat_id: chatId });
    expect(await b.nextOfType('error')).toMatchObject({ id: 's', code: 'not_found' });
    b.send({ type: 'summarize_chat', id: 'peek', chat_id: chatId });
    expect(await b.nextOfType('error')).toMatchObject({ id: 'peek', code: 'not_found' });
    b.close();

    // The host's own handler on the same socket: its frame types, the chat's model.
    fake.enqueue({ kind: 'stream', content: ['Asked about ', 'shipping.'] });
    a.send({ type: 'summarize_chat', id: 'sum', chat_id: chatId });
    const summary = await a.collect((f) => f.type === 'chat_summary');
    expect(summary.filter((f) => f.type === 'chat_summary_delta').map((f) => f.text)).toEqual(['Asked about ', 'shipping.']);
    expect(summary[summary.length - 1]).toEqual({ type: 'chat_summary', id: 'sum', chat_id: chatId, summary: 'Asked about shipping.' });
    const sent = fake.requests[fake.requests.length - 1].body;
    expect(sent.messages[1].content).toContain('User: When do orders ship?');

    a.send({ type: 'summarize_chat', id: 'bad', chat_id: 'not-a-uuid' });
    expect(await a.nextOfType('error')).toMatchObject({ id: 'bad', code: 'invalid_message', field: 'chat_id' });
    a.send({ type: 'make_coffee', id: 'u' });
    expect(await a.nextOfType('error')).toMatchObject({ id: 'u', code: 'unknown_type' });
    a.close();
  });

  it('runs the page script under the prefix in Chromium: socket, streaming, links, delete', async () => {
    const browser = await launchChromium();
    try {
      const context = await browser.newContext();
      await context.addCookies([{ name: 'host_session', value: 'bob-token', url }]);
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('pageerror', (error) => problems.push(error.message));
      // The favicon is the host's business (it has none here).
      page.on(
        'console',
        (msg) => msg.type() === 'error' && !msg.location().url.endsWith('/favicon.ico') && problems.push(`${msg.text()} ${msg.location().url}`),
      );
      await page.goto(`${url}/assistant/chat`);
      await page.locator('[data-connection="connected"]').waitFor({ state: 'attached' }); // /assistant/ws with the host's cookie

      fake.enqueue({ kind: 'stream', content: ['Prefixed ', 'and ', 'fine.'] });
      await page.locator('form[data-chat-form] textarea[name=content]').fill('Are you there?');
      await page.keyboard.press('Enter');
      await page.locator('[data-role="assistant"][data-status="complete"]').waitFor();
      expect(await page.locator('[data-role="assistant"] [data-content]').textContent()).toContain('Prefixed and fine.');
      await page.waitForURL(/\/assistant\/chat\/[0-9a-f-]{36}$/);
      const chatId = page.url().split('/').pop()!;
      const link = page.locator(`[data-chat-item="${chatId}"] a`);
      expect(await link.getAttribute('href')).toBe(`/assistant/chat/${chatId}`);

      // The list's delete goes to the prefixed API, then the page swaps to a new chat (HTMX, prefixed).
      await page.locator(`[data-chat-item="${chatId}"] [data-chat-delete]`).click();
      await page.locator('[data-confirm-delete]').click();
      await page.waitForURL(/\/assistant\/chat$/);
      await link.waitFor({ state: 'detached' });
      expect((await request(url).get('/assistant/api/chats').set(bob).expect(200)).body.chats).toEqual([]);
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  });

  it('refuses sockets without host credentials and serves none at the default /ws', async () => {
    expect(await upgradeStatus(wsUrl, {})).toBe(401);
    expect(await upgradeStatus(wsUrl, { Authorization: 'Bearer forged' })).toBe(401);
    expect(await upgradeStatus(wsUrl, alice)).toBe(101);
    expect(await upgradeStatus(`${url.replace('http', 'ws')}/ws`, alice)).toBe(0); // every WS_PATH gateway moved to /assistant/ws
  });
});

// ------------------------------------------------------------------------------------------------
// A handler module written here and nowhere else, and a model of our own, on the standalone wiring.

class ShoutDto {
  @IsOptional()
  @IsString()
  id?: string;

  @IsString()
  @MaxLength(100)
  text: string;
}

type ShoutFrame = ShoutDto & { type: 'shout' };

@FrameGateway()
class ShoutGateway implements MessageHandler<ShoutFrame> {
  constructor(private readonly registry: ConnectionRegistry) {}

  @OnFrame('shout', ShoutDto)
  handleMessage(msg: ShoutFrame, connectionId: string): void {
    if (msg.text === 'whisper') throw new AppError('forbidden', 'no whispering');
    this.registry.send(connectionId, { type: 'shouted', id: msg.id, text: msg.text.toUpperCase() });
  }

  broadcast(msg: Frame): void {
    this.registry.broadcast(msg);
  }
}

@Module({ providers: [ShoutGateway] })
class ShoutModule {}

/** A model of our own: repeats the last user message. */
@Injectable()
class EchoModel extends LlmProvider {
  readonly defaultModel = 'echo-1';
  isConfigured(): boolean {
    return true;
  }
  stream(request: LlmRequest): Observable<LlmEvent> {
    const last = request.messages[request.messages.length - 1].content;
    return of<LlmEvent[]>({ type: 'content', text: 'echo: ' }, { type: 'content', text: last }, { type: 'finish', reason: 'stop', complete: true });
  }
  async listModels(): Promise<string[]> {
    return [this.defaultModel];
  }
}

describe('a handler module added in the test alone (e2e)', () => {
  let app: NestExpressApplication;
  let wsUrl: string;

  beforeAll(async () => {
    @Module({
      imports: [
        ChatSystemModule.forRoot({
          settings: { AUTH_MODE: 'none', DATABASE_URL: tempDatabaseUrl(), DRAIN_TIMEOUT_MS: 500 },
          isolated: true,
          llmProvider: EchoModel,
        }),
        ShoutModule,
      ],
    })
    class TestHostModule {}
    app = await NestFactory.create<NestExpressApplication>(TestHostModule, { logger: ['error'] });
    configureApp(app);
    await app.listen(0, '127.0.0.1');
    wsUrl = `ws://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}/ws`;
  });

  afterAll(async () => {
    await app?.close();
  });

  it('answers its own type on /ws beside the chat, with validation and error frames', async () => {
    const ws = await WsTestClient.connect(wsUrl);
    ws.send({ type: 'shout', id: 's1', text: 'hello' });
    expect(await ws.nextOfType('shouted')).toEqual({ type: 'shouted', id: 's1', text: 'HELLO' });
    ws.send({ type: 'shout', id: 's2' });
    expect(await ws.nextOfType('error')).toMatchObject({ id: 's2', code: 'invalid_message', field: 'text' });
    ws.send({ type: 'shout', id: 's3', text: 'whisper' });
    expect(await ws.nextOfType('error')).toMatchObject({ id: 's3', code: 'forbidden', message: 'no whispering' });
    ws.send({ type: 'shout_louder', id: 's4' });
    expect(await ws.nextOfType('error')).toMatchObject({ id: 's4', code: 'unknown_type' });

    // The chat still streams on the same socket, from the model bound in place of DeepSeek.
    const frames = await turn(ws, 'c1', { content: 'ping' });
    expect(frames.find((f) => f.type === 'agent_response_start')).toMatchObject({ model: 'echo-1' });
    expect(frames[frames.length - 1]).toMatchObject({ type: 'agent_response_end', status: 'complete', content: 'echo: ping' });
    // The generated title's request goes to the host's model too, which answers synchronously.
    expect(await ws.nextOfType('chat_updated')).toMatchObject({ chat_id: frames[0].chat_id, title: 'echo: Question:' });
    ws.close();
  });
});

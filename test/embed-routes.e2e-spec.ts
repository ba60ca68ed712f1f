import { Controller, Get, Module, Req } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import type { Request } from 'express';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { ChatSystemModule, ChatSystemOptions, configureChatSystem } from '../src';
import { RunningApp, startApp, tempDatabaseUrl } from './support/app';
import { upgradeStatus } from './support/ws-client';

@Controller()
class HostController {
  @Get('host/cookies')
  cookies(@Req() req: Request): { cookie: string } {
    return { cookie: req.headers.cookie ?? '' };
  }
}

/** A host with one route of its own (and no `/`), the chat mounted as given. */
async function startHost(options: ChatSystemOptions): Promise<{ app: NestExpressApplication; url: string }> {
  @Module({
    imports: [ChatSystemModule.forRoot({ ...options, settings: { DATABASE_URL: tempDatabaseUrl(), ...options.settings } })],
    controllers: [HostController],
  })
  class HostModule {}
  const app = await NestFactory.create<NestExpressApplication>(HostModule, { logger: ['error'] });
  configureChatSystem(app);
  await app.listen(0, '127.0.0.1');
  return { app, url: `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}` };
}

const setCookieOf = (res: request.Response) => String([res.headers['set-cookie']].flat()[0]);

describe("embedded routes stay off the host's: cookie path, no GET / (e2e)", () => {
  const hosts: NestExpressApplication[] = [];
  afterAll(async () => {
    for (const app of hosts) await app.close();
  });
  async function host(options: ChatSystemOptions): Promise<string> {
    const { app, url } = await startHost(options);
    hosts.push(app);
    return url;
  }

  it("under a prefix the session cookie's Path is ours: sent to our pages and socket, not to the host's routes", async () => {
    const url = await host({ routePrefix: '/assistant', wsPath: '/assistant/ws' });
    const browser = request.agent(url); // a cookie jar that honours Path
    const signup = await browser.post('/assistant/auth/signup').send({ username: 'alice', password: 'correct horse battery' }).expect(201);
    expect(setCookieOf(signup)).toMatch(/^chat_session=[^;]+;.*Path=\/assistant(;|$)/);
    await browser.get('/assistant/api/chats').expect(200, { chats: [] });
    expect((await browser.get('/host/cookies').expect(200)).body).toEqual({ cookie: '' });
    const cookie = setCookieOf(signup).split(';')[0];
    expect(await upgradeStatus(`${url.replace('http', 'ws')}/assistant/ws`, { cookie })).toBe(101);

    const logout = await browser.post('/assistant/auth/logout').expect(204);
    expect(setCookieOf(logout)).toMatch(/^chat_session=;.*Path=\/assistant(;|$)/);
    await browser.get('/assistant/api/chats').expect(401);
  });

  it('keeps Path=/ when the socket is outside the prefix, so the socket still gets the cookie', async () => {
    const url = await host({ routePrefix: '/assistant' });
    const signup = await request(url).post('/assistant/auth/signup').send({ username: 'bob', password: 'correct horse battery' }).expect(201);
    expect(setCookieOf(signup)).toMatch(/Path=\/(;|$)/);
    expect(await upgradeStatus(`${url.replace('http', 'ws')}/ws`, { cookie: setCookieOf(signup).split(';')[0] })).toBe(101);
  });

  it('without a prefix takes no GET /: the host keeps its root (here: none, so 404)', async () => {
    const url = await host({ settings: { AUTH_MODE: 'none' } });
    const root = await request(url).get('/').expect(404);
    expect(root.headers.location).toBeUndefined();
    await request(url).get('/chat').expect(200);
  });

  it('with a prefix, our root leads to the chat', async () => {
    const url = await host({ routePrefix: '/assistant', settings: { AUTH_MODE: 'none' } });
    await request(url).get('/assistant').expect(302).expect('Location', '/assistant/chat');
    await request(url).get('/').expect(404);
  });

  it('refuses a non-Express app at start-up with a sentence', () => {
    const fastifyApp = { getHttpAdapter: () => ({ getType: () => 'fastify' }) } as unknown as NestExpressApplication;
    expect(() => configureChatSystem(fastifyApp)).toThrow(
      'nest-chat-system runs on Express only, and this app uses the fastify HTTP adapter: create it with NestFactory.create<NestExpressApplication>(AppModule) (@nestjs/platform-express), or serve the chat from an Express app of its own',
    );
  });
});

describe('the standalone server keeps its GET / (e2e)', () => {
  let server: RunningApp;
  beforeAll(async () => {
    server = await startApp();
  });
  afterAll(() => server.close());

  it('redirects / to the chat', async () => {
    await request(server.url).get('/').expect(302).expect('Location', '/chat');
  });
});

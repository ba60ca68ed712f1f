import { type CanActivate, Controller, type ExecutionContext, Get, Injectable, Module, RequestMethod, SetMetadata } from '@nestjs/common';
import { APP_GUARD, NestFactory, Reflector } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { ChatSystemModule, type ChatSystemOptions, configureChatSystem } from '../src';
import { tempDatabaseUrl } from './support/app';

const OPEN = 'host:open';
/** The host's own "public" decorator, with a key of its own. */
const Open = () => SetMetadata(OPEN, true);

/** The host's global guard: `X-Host-Key: yes`, or a route marked with its key. */
@Injectable()
class HostKeyGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}
  canActivate(context: ExecutionContext): boolean {
    if (this.reflector.getAllAndOverride<boolean>(OPEN, [context.getHandler(), context.getClass()])) return true;
    if (context.getType() !== 'http') return false;
    return context.switchToHttp().getRequest<{ headers: Record<string, string> }>().headers['x-host-key'] === 'yes';
  }
}

@Controller()
class HostController {
  @Open()
  @Get('other')
  other() {
    return { host: true };
  }
}

type Setup = (app: NestExpressApplication) => void;

/** A host with `/other` of its own (open) and the chat as given; `before`/`after` run around configureChatSystem. */
async function startHost(options: ChatSystemOptions, before: Setup, after: Setup = () => undefined, guard = false) {
  @Module({
    imports: [ChatSystemModule.forRoot({ ...options, settings: { DATABASE_URL: tempDatabaseUrl(), ...options.settings } })],
    controllers: [HostController],
    providers: guard ? [{ provide: APP_GUARD, useClass: HostKeyGuard }] : [],
  })
  class HostModule {}
  const app = await NestFactory.create<NestExpressApplication>(HostModule, { logger: ['error'] });
  before(app);
  configureChatSystem(app);
  after(app);
  await app.listen(0, '127.0.0.1');
  return { app, url: `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}` };
}

async function signup(url: string, base: string): Promise<string> {
  const res = await request(url).post(`${base}/auth/signup`).send({ username: 'alice', password: 'correct horse battery' }).expect(201);
  return String([res.headers['set-cookie']].flat()[0]);
}

describe("the host's global prefix and global guard (e2e)", () => {
  const apps: NestExpressApplication[] = [];
  afterAll(async () => {
    for (const app of apps) await app.close();
  });

  it('routes the host excludes from its global prefix stay at routePrefix, and our page data says so', async () => {
    const { app, url } = await startHost({ routePrefix: '/assistant', wsPath: '/assistant/ws' }, (a) =>
      a.setGlobalPrefix('api', { exclude: [{ path: 'assistant/{*path}', method: RequestMethod.ALL }] }),
    );
    apps.push(app);
    const cookie = (await signup(url, '/assistant')).split(';')[0];
    const page = await request(url).get('/assistant/chat').set('Cookie', cookie).set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('data-base-path="/assistant"');
    await request(url).get('/assistant/static/page.js').expect(200);
    await request(url).get('/api/other').expect(200, { host: true });
  });

  it('without a routePrefix, our routes are under the global prefix; the host keeps GET /api and its headers', async () => {
    const { app, url } = await startHost(
      {},
      () => undefined,
      (a) => a.setGlobalPrefix('api'),
    );
    apps.push(app);
    const setCookie = await signup(url, '/api');
    // The socket stays at /ws (no global prefix on sockets): the cookie's path is what both share.
    expect(setCookie).toMatch(/; Path=\/(;|$)/);
    const cookie = setCookie.split(';')[0];
    const page = await request(url).get('/api/chat').set('Cookie', cookie).set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('data-base-path="/api"');
    expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    await request(url).get('/api/api/chats').set('Cookie', cookie).expect(200, { chats: [] });
    await request(url).get('/api/static/page.js').expect(200);
    // No redirect of ours at the host's root of /api, and none of our headers on its routes.
    await request(url).get('/api').expect(404);
    const other = await request(url).get('/api/other').expect(200, { host: true });
    expect(other.headers['content-security-policy']).toBeUndefined();
  });

  it("hostPublicMetadata: the host's global guard lets our public routes through, or all of them with routes: 'all'", async () => {
    const publicOnly = await startHost({ routePrefix: '/chat-a', hostPublicMetadata: { key: OPEN } }, () => undefined, undefined, true);
    apps.push(publicOnly.app);
    await request(publicOnly.url).get('/chat-a/health').expect(200);
    await request(publicOnly.url).get('/chat-a/login').expect(200);
    // Not public: the host's guard wants its key (then ours wants a session).
    await request(publicOnly.url).get('/chat-a/api/chats').expect(403);
    await request(publicOnly.url).get('/chat-a/api/chats').set('X-Host-Key', 'yes').expect(401);

    const all = await startHost({ routePrefix: '/chat-b', hostPublicMetadata: { key: OPEN, routes: 'all' } }, () => undefined, undefined, true);
    apps.push(all.app);
    const cookie = (await signup(all.url, '/chat-b')).split(';')[0];
    await request(all.url).get('/chat-b/api/chats').set('Cookie', cookie).expect(200, { chats: [] });
    // Our own guard still decides.
    await request(all.url).get('/chat-b/api/chats').expect(401);
  });
});

import { Controller, Get, Module, Render } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { ChatSystemModule, configureChatSystem } from '../src';
import { tempDatabaseUrl } from './support/app';

@Controller('host')
class HostPagesController {
  @Get('page')
  @Render('host_page')
  page() {
    return { title: 'Host page' };
  }
}

/** The process-wide hbs registry a host's own Handlebars views use. */
// eslint-disable-next-line @typescript-eslint/no-require-imports -- hbs ships no types; the host's two calls are typed here
const hostHbs = require('hbs') as { registerHelper(name: string, fn: () => string): void; registerPartial(name: string, text: string): void };

/**
 * A host whose own view engine is hbs (the same package as ours), with a helper `eq`, a partial
 * `account_menu` and a `not_found.hbs` of its own, registered before it mounts the chat: each keeps
 * its own templates, helpers and partials, and no page value of ours reaches the host's templates.
 */
describe('a host with its own hbs views, helpers and partials (e2e)', () => {
  let app: NestExpressApplication;
  let url = '';
  let views: string;

  beforeAll(async () => {
    views = mkdtempSync(join(tmpdir(), 'chat-host-hbs-'));
    mkdirSync(join(views, 'layouts'));
    writeFileSync(join(views, 'host_page.hbs'), '<h1>{{title}}</h1><p id="eq">{{eq 1 1}}</p><p id="base">[{{basePath}}|{{wsPath}}]</p>{{> account_menu}}');
    writeFileSync(join(views, 'not_found.hbs'), '<p>HOST NOT FOUND</p>');
    writeFileSync(join(views, 'layouts', 'chat_content.hbs'), '<p>HOST TEMPLATE</p>');
    hostHbs.registerHelper('eq', () => 'host-eq');
    hostHbs.registerPartial('account_menu', '<nav>HOST MENU</nav>');

    @Module({
      imports: [ChatSystemModule.forRoot({ routePrefix: '/assistant', wsPath: '/assistant/ws', settings: { DATABASE_URL: tempDatabaseUrl() } })],
      controllers: [HostPagesController],
    })
    class HostModule {}
    app = await NestFactory.create<NestExpressApplication>(HostModule, { logger: ['error'] });
    app.setBaseViewsDir(views);
    app.setViewEngine('hbs');
    configureChatSystem(app);
    await app.listen(0, '127.0.0.1');
    url = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await app?.close();
    rmSync(views, { recursive: true, force: true });
  });

  it("the host's page keeps its helper and partial, and gets no page value of ours", async () => {
    const page = await request(url).get('/host/page').expect(200);
    expect(page.text).toContain('<p id="eq">host-eq</p>');
    expect(page.text).toContain('<nav>HOST MENU</nav>');
    expect(page.text).toContain('<p id="base">[|]</p>');
  });

  it('our pages use our templates, helper and partials', async () => {
    const signup = await request(url).post('/assistant/auth/signup').send({ username: 'alice', password: 'correct horse battery' }).expect(201);
    const cookie = String([signup.headers['set-cookie']].flat()[0]).split(';')[0];
    const chat = await request(url).get('/assistant/chat').set('Cookie', cookie).set('Accept', 'text/html').expect(200);
    expect(chat.text).toContain('data-base-path="/assistant"');
    expect(chat.text).not.toMatch(/HOST (MENU|TEMPLATE)|host-eq/);
    // Our account menu partial, not the host's.
    expect(chat.text).toContain('href="/assistant/account"');

    const missing = await request(url).get('/assistant/chat/not-a-uuid').set('Cookie', cookie).set('Accept', 'text/html').expect(404);
    expect(missing.text).toContain('href="/assistant/chat"');
    expect(missing.text).not.toContain('HOST NOT FOUND');
  });
});

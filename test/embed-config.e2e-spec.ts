import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { AppModule } from '../src/app.module';
import { ChatSystemModule, ChatSystemOptions, configureChatSystem, Environment } from '../src';
import { tempDatabaseUrl } from './support/app';

/**
 * Embedded, the module reads its options only: a host's own `DATABASE_URL`, `DEEPSEEK_API_KEY`, `PORT`
 * … are not ours. Environment variables count when the host asks (`envPrefix`, or `isolated: false`,
 * the old behaviour); the standalone server keeps reading the whole environment.
 */
describe('embedded configuration: options first, environment opt-in (e2e)', () => {
  const saved = { ...process.env };
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'chat-config-'));
  });

  beforeEach(() => {
    // What a real host's environment holds: its own database (Prisma/MySQL) and keys.
    process.env.DATABASE_URL = 'mysql://host:secret@127.0.0.1:3306/shop';
    process.env.DEEPSEEK_API_KEY = 'x';
    process.env.AUTH_MODE = 'sideways';
    process.env.PORT = 'not-a-port';
  });

  afterEach(() => {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A host app with the chat mounted as given, listening, with its settings. */
  async function host(chat: ReturnType<typeof ChatSystemModule.forRoot>) {
    @Module({ imports: [chat] })
    class HostModule {}
    const app = await NestFactory.create<NestExpressApplication>(HostModule, { logger: ['error'], abortOnError: false });
    configureChatSystem(app);
    await app.listen(0, '127.0.0.1');
    return { app, url: `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`, env: app.get(Environment) };
  }

  async function withHost(options: ChatSystemOptions, check: (env: Environment, url: string) => Promise<void> | void): Promise<void> {
    const { app, url, env } = await host(ChatSystemModule.forRoot({ routePrefix: '/assistant', ...options }));
    try {
      await check(env, url);
    } finally {
      await app.close();
    }
  }

  it("starts beside a host's DATABASE_URL=mysql://… and DEEPSEEK_API_KEY, on our settings only", async () => {
    const ours = tempDatabaseUrl();
    await withHost({ settings: { DATABASE_URL: ours, AUTH_MODE: 'none' } }, async (env, url) => {
      expect(env.DATABASE_URL).toBe(ours);
      expect(env.DEEPSEEK_API_KEY).toBeUndefined();
      expect(env.PORT).toBe(3000);
      await request(url).get('/assistant/health').expect(200);
      expect((await request(url).get('/assistant/api/chats').expect(200)).body).toEqual({ chats: [] });
    });
  });

  it('reads no CHAT_ variable unless asked; with envPrefix reads only those, under the settings', async () => {
    const fromEnv = tempDatabaseUrl();
    process.env.CHAT_DATABASE_URL = fromEnv;
    process.env.CHAT_DEEPSEEK_API_KEY = 'chat-key';
    process.env.CHAT_DEEPSEEK_MODEL = 'from-env';
    await withHost({ settings: { DATABASE_URL: tempDatabaseUrl() } }, (env) => {
      expect(env.DATABASE_URL).not.toBe(fromEnv);
      expect(env.DEEPSEEK_API_KEY).toBeUndefined();
    });
    await withHost({ envPrefix: 'CHAT_', settings: { DEEPSEEK_MODEL: 'from-settings' } }, (env) => {
      expect(env.DATABASE_URL).toBe(fromEnv);
      expect(env.DEEPSEEK_API_KEY).toBe('chat-key');
      expect(env.DEEPSEEK_MODEL).toBe('from-settings'); // settings win
      expect(env.AUTH_MODE).toBe('local'); // the host's unprefixed AUTH_MODE is not ours
      expect(env.PORT).toBe(3000);
    });
  });

  it('forRootAsync is isolated the same way', async () => {
    const ours = tempDatabaseUrl();
    const chat = ChatSystemModule.forRootAsync({ useFactory: async () => ({ settings: { DATABASE_URL: ours } }) });
    const { app, env } = await host(chat);
    try {
      expect(env.DATABASE_URL).toBe(ours);
      expect(env.DEEPSEEK_API_KEY).toBeUndefined();
    } finally {
      await app.close();
    }
  });

  it('reads an envFile only when given, filtered by the prefix', async () => {
    const file = join(dir, 'chat.env');
    writeFileSync(file, 'CHAT_DEEPSEEK_MODEL=file-model\nDEEPSEEK_BASE_URL=http://not-ours\n');
    await withHost({ envFile: file, envPrefix: 'CHAT_', settings: { DATABASE_URL: tempDatabaseUrl() } }, (env) => {
      expect(env.DEEPSEEK_MODEL).toBe('file-model');
      expect(env.DEEPSEEK_BASE_URL).toBe('https://api.deepseek.com');
    });
  });

  it("isolated: false still reads the whole environment (and so refuses the host's mysql URL clearly)", async () => {
    process.env.AUTH_MODE = 'none';
    process.env.PORT = '0';
    await expect(host(ChatSystemModule.forRoot({ isolated: false, envFile: join(dir, 'none.env') }))).rejects.toThrow(
      'DATABASE_URL "mysql://host:***@127.0.0.1:3306/shop": use sqlite:<path> or postgres://…',
    );
  });

  it('the standalone server keeps reading the unprefixed environment', async () => {
    process.env.DATABASE_URL = tempDatabaseUrl();
    process.env.PORT = '0';
    process.env.AUTH_MODE = 'none';
    const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot({ envFile: join(dir, 'none.env') }), { logger: ['error'] });
    try {
      const env = app.get(Environment);
      expect(env.DATABASE_URL).toBe(process.env.DATABASE_URL);
      expect(env.DEEPSEEK_API_KEY).toBe('x');
      expect(env.AUTH_MODE).toBe('none');
    } finally {
      await app.close();
    }
  });
});

import { DynamicModule, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import {
  AuthUser,
  CHAT_SYSTEM_CONFIG,
  ChatSystemConfig,
  ChatSystemConfigFactory,
  ChatSystemModule,
  configureChatSystem,
  Environment,
  MountPoint,
  UserResolver,
} from '../src';
import { tempDatabaseUrl } from './support/app';

/** The host's own settings service, in a module of its own (what `ConfigService` is to a real host). */
@Injectable()
class HostSettings {
  readonly databaseUrl = tempDatabaseUrl();
  readonly model = 'host-model';
  /** How many times a config factory read it. */
  reads = 0;
}

/** The host's users: `x-user: <name>` names one (a token-based host's resolver, reduced). */
@Injectable()
class HostUsers {
  find(name: string | undefined): AuthUser | undefined {
    return name ? { id: `host-${name}`, username: name, isAdmin: false } : undefined;
  }
}

@Module({ providers: [HostSettings, HostUsers], exports: [HostSettings, HostUsers] })
class HostSettingsModule {}

/** `useClass`: built by Nest inside the chat's module, injecting from `imports`. */
@Injectable()
class ChatConfigFromHost implements ChatSystemConfigFactory {
  constructor(private readonly settings: HostSettings) {}

  createChatSystemConfig(): ChatSystemConfig {
    this.settings.reads++;
    return { settings: { DATABASE_URL: this.settings.databaseUrl, DEEPSEEK_MODEL: this.settings.model } };
  }
}

/** `useExisting`: the host's own provider, exported by its module, implements the factory. */
@Injectable()
class HostChatConfig implements ChatSystemConfigFactory {
  constructor(private readonly settings: HostSettings) {}

  async createChatSystemConfig(): Promise<ChatSystemConfig> {
    this.settings.reads++;
    await Promise.resolve();
    return { settings: { DATABASE_URL: this.settings.databaseUrl, DEEPSEEK_MODEL: 'existing-model', MAX_RUNNING_PER_USER: 7 } };
  }
}

@Module({ imports: [HostSettingsModule], providers: [HostChatConfig], exports: [HostChatConfig, HostSettingsModule] })
class HostChatConfigModule {}

/** A `userResolver` class of the host, injecting its users service from `imports`. */
@Injectable()
class HeaderUserResolver extends UserResolver {
  constructor(private readonly users: HostUsers) {
    super();
  }

  resolve(req: IncomingMessage): Promise<AuthUser | undefined> {
    const name = req.headers['x-user'];
    return Promise.resolve(this.users.find(typeof name === 'string' ? name : undefined));
  }
}

/**
 * `forRootAsync` with `useClass` and `useExisting` (Nest's ConfigurableModuleBuilder): the runtime
 * config comes from the host's class at start-up, the mounting options (prefix, socket path,
 * resolver, imports) stay static and work beside it, and they are not part of the runtime config.
 */
describe('ChatSystemModule.forRootAsync with useClass / useExisting (e2e)', () => {
  async function host(chat: DynamicModule) {
    @Module({ imports: [chat] })
    class HostModule {}
    const app = await NestFactory.create<NestExpressApplication>(HostModule, { logger: false, abortOnError: false });
    configureChatSystem(app);
    await app.listen(0, '127.0.0.1');
    return { app, url: `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}` };
  }

  it('useClass: the config class is built with the given imports, and the mounting options still apply', async () => {
    const { app, url } = await host(
      ChatSystemModule.forRootAsync({
        imports: [HostSettingsModule],
        useClass: ChatConfigFromHost,
        routePrefix: '/assistant',
        wsPath: '/assistant/ws',
        userResolver: HeaderUserResolver,
      }),
    );
    try {
      const settings = app.get(HostSettings);
      const env = app.get(Environment);
      expect(settings.reads).toBe(1);
      expect(env.DATABASE_URL).toBe(settings.databaseUrl);
      expect(env.DEEPSEEK_MODEL).toBe('host-model');
      // Only the runtime config is the provider's value: the mounting options are the module's shape.
      expect(app.get(CHAT_SYSTEM_CONFIG)).toEqual({ settings: { DATABASE_URL: settings.databaseUrl, DEEPSEEK_MODEL: 'host-model' } });
      const mount = app.get(MountPoint);
      expect([mount.basePath, mount.wsPath]).toEqual(['/assistant', '/assistant/ws']);
      await request(url).get('/assistant/health').expect(200);
      // The host's resolver (its users service from `imports`) decides who asks; our accounts are left out.
      await request(url).get('/assistant/api/chats').expect(401);
      expect((await request(url).get('/assistant/api/chats').set('x-user', 'ann').expect(200)).body).toEqual({ chats: [] });
      await request(url).get('/assistant/login').expect(404);
    } finally {
      await app.close();
    }
  });

  it("useExisting: the host's exported provider makes the config (async)", async () => {
    const { app, url } = await host(
      ChatSystemModule.forRootAsync({ imports: [HostChatConfigModule], useExisting: HostChatConfig, userResolver: HeaderUserResolver }),
    );
    try {
      const settings = app.get(HostSettings);
      const env = app.get(Environment);
      expect(settings.reads).toBe(1);
      expect(env.DATABASE_URL).toBe(settings.databaseUrl);
      expect(env.DEEPSEEK_MODEL).toBe('existing-model');
      expect(env.MAX_RUNNING_PER_USER).toBe(7);
      expect(app.get(MountPoint).basePath).toBe('');
      expect((await request(url).get('/api/chats').set('x-user', 'bo').expect(200)).body).toEqual({ chats: [] });
    } finally {
      await app.close();
    }
  });

  it('forRoot: the runtime config holds the settings and not the mounting options', async () => {
    const databaseUrl = tempDatabaseUrl();
    const { app } = await host(ChatSystemModule.forRoot({ settings: { DATABASE_URL: databaseUrl }, envPrefix: 'CHAT_TEST_NONE_', routePrefix: '/chat' }));
    try {
      expect(app.get(CHAT_SYSTEM_CONFIG)).toEqual({ settings: { DATABASE_URL: databaseUrl }, envPrefix: 'CHAT_TEST_NONE_' });
      expect(app.get(MountPoint).basePath).toBe('/chat');
    } finally {
      await app.close();
    }
  });

  it('a factory that makes an invalid setting fails the start with the readable error', async () => {
    const chat = ChatSystemModule.forRootAsync({ useFactory: () => ({ settings: { DATABASE_URL: tempDatabaseUrl(), PORT: 'not-a-port' } }) });
    await expect(host(chat)).rejects.toThrow(/Invalid configuration:\n {2}PORT: /);
  });
});

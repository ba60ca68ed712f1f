import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { AddressInfo } from 'node:net';
import { tempDatabaseUrl } from './databases';
import { AppModule } from '../../src/app.module';
import { configureApp } from '../../src/configure-app';

export interface RunningApp {
  url: string;
  wsUrl: string;
  app: INestApplication;
  close(): Promise<void>;
}

export { tempDatabaseUrl } from './databases';

/**
 * Boots the real server (same `configureApp` as main.ts) on a free port. `env` are the only settings:
 * the process environment and `.env` are ignored, so tests do not depend on the machine.
 */
export async function startApp(env: Record<string, string> = {}): Promise<RunningApp> {
  // Generated titles are a model call after a new chat's first answer: off unless a suite asks (its
  // usage and timing would blur the suites that count calls and tokens).
  const settings = { AUTH_MODE: 'none', DATABASE_URL: tempDatabaseUrl(), DRAIN_TIMEOUT_MS: '500', GENERATED_TITLES: 'false', ...env };
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot({ overrides: settings, isolated: true }), {
    logger: ['error'],
    abortOnError: false,
  });
  configureApp(app);
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    app,
    close: () => app.close(),
  };
}

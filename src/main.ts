import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { AddressInfo } from 'node:net';
import { AppModule } from './app.module';
import { configureApp } from './configure-app';
import { loadEnvironment } from './config/app-config.module';
import { Environment } from './config/environment';

async function bootstrap(): Promise<void> {
  // The settings are checked before Nest starts, so a bad one is one line (Nest would print its stack).
  loadEnvironment({ isolated: false });
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot());
  configureApp(app);
  app.enableShutdownHooks(['SIGTERM', 'SIGINT']);
  const env = app.get(Environment);
  await app.listen(env.PORT, env.HOST);
  const { port } = app.getHttpServer().address() as AddressInfo;
  const host = env.HOST.includes(':') ? `[${env.HOST}]` : env.HOST;
  // The one line scripts wait for (docs/protocol.md).
  process.stdout.write(`listening on http://${host}:${port}\n`);
}

bootstrap().catch((error: unknown) => {
  new Logger('Bootstrap').error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});

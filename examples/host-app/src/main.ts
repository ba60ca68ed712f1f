import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { configureChatSystem } from 'nest-chat-system';
import type { AddressInfo } from 'node:net';
import { AppModule } from './app.module';

async function bootstrap(): Promise<void> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule);
  // The chat's assets and page headers under its paths; no global pipe, filter, view engine or header.
  // A global prefix may come before or after it (app.setGlobalPrefix('api') would put the chat at
  // /api/assistant; its wsPath stays as written).
  configureChatSystem(app);
  app.enableShutdownHooks();
  await app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  process.stdout.write(`host app listening on http://127.0.0.1:${port}\n`);
}

void bootstrap();

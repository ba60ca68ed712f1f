import { ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import helmet from 'helmet';
import { configureChatSystem } from 'nest-chat-system';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { AppModule } from './app.module';
import { WrapInterceptor } from './wrap.interceptor';

async function bootstrap() {
  const app = await NestFactory.create<NestExpressApplication>(AppModule);
  app.use(helmet());
  app.useGlobalPipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true }));
  app.useGlobalInterceptors(new WrapInterceptor());
  app.setBaseViewsDir(join(__dirname, '..', 'views'));
  app.setViewEngine('ejs');
  // PREFIX_ORDER=after: the global prefix is set after mounting the chat (and the chat's routePrefix
  // is written with it, 'api/assistant'); either way the chat lives at /api/assistant.
  const prefixLast = process.env.PREFIX_ORDER === 'after';
  if (!prefixLast) app.setGlobalPrefix('api');
  configureChatSystem(app);
  if (prefixLast) app.setGlobalPrefix('api');

  await app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  console.log(`listening on http://127.0.0.1:${port}`);
}
void bootstrap();

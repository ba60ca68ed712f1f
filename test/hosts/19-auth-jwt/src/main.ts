import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { configureChatSystem } from 'nest-chat-system';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { AppModule } from './app.module.js';

async function bootstrap() {
  const app = await NestFactory.create<NestExpressApplication>(AppModule);
  if (process.env.MOUNT_CHAT !== '0') {
    configureChatSystem(app);
    // The script that hands our pages the token (same origin: our pages allow 'self' scripts only).
    app.useStaticAssets(join(__dirname, '..', 'public'), { prefix: '/host/' });
  }
  // The sample listens on 3000; PORT=0 here (a free port), printed for the test.
  await app.listen(process.env.PORT ?? 3000, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  console.log(`listening on http://127.0.0.1:${port}`);
}
bootstrap();

import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { WsAdapter } from '@nestjs/platform-ws';
import { configureChatSystem } from 'nest-chat-system';
import type { AddressInfo } from 'node:net';
import { AppModule } from './app.module';

async function bootstrap() {
  const app = await NestFactory.create<NestExpressApplication>(AppModule);
  // The sample's adapter, set before or after mounting the chat (WS_ADAPTER=after): either works.
  const adapterLast = process.env.WS_ADAPTER === 'after';
  if (!adapterLast) app.useWebSocketAdapter(new WsAdapter(app));
  configureChatSystem(app);
  if (adapterLast) app.useWebSocketAdapter(new WsAdapter(app));

  // The sample listens on 3000; PORT=0 here (a free port), printed for the test.
  await app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  console.log(`listening on http://127.0.0.1:${port}`);
}
void bootstrap();

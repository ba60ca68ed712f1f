import { ArgumentsHost, Catch, WsExceptionFilter } from '@nestjs/common';
import type { WebSocket } from 'ws';
import { toErrorFrame } from './error-frames';

/**
 * Nest 11's default WS filter emits an `exception` event that a raw `ws` client never sees; this one
 * answers with a docs/protocol.md `error` frame carrying the request's `id`, and the socket stays open.
 */
@Catch()
export class WsErrorFilter implements WsExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    const ws = host.switchToWs();
    const client = ws.getClient<WebSocket>();
    const data = ws.getData<{ id?: unknown }>();
    const id = typeof data?.id === 'string' ? data.id : undefined;
    if (client.readyState === 1) client.send(JSON.stringify(toErrorFrame(exception, id)));
  }
}

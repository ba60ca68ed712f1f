import { ArgumentsHost, Catch, WsExceptionFilter } from '@nestjs/common';
import { toErrorFrame } from './error-frames';
import type { ErrorFrame } from './frames';

/**
 * Anything a frame handler (or its guards, pipes, interceptors) throws becomes the docs/protocol.md
 * `error` frame carrying the request's `id`; the socket stays open. The filter returns the frame and
 * FrameSocketServer sends it (what a filter returns is the call's result under ExternalContextCreator).
 */
@Catch()
export class WsErrorFilter implements WsExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): ErrorFrame {
    const data = host.switchToWs().getData<{ id?: unknown } | undefined>();
    return toErrorFrame(exception, typeof data?.id === 'string' ? data.id : undefined);
  }
}

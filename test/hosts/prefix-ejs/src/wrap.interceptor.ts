import { type CallHandler, type ExecutionContext, Injectable, type NestInterceptor } from '@nestjs/common';
import { RENDER_METADATA } from '@nestjs/common/constants';
import { isChatSystemRoute } from 'nest-chat-system';
import { map, type Observable } from 'rxjs';

/**
 * The host's answer envelope, `{ data: … }`, on its own JSON routes (its `@Render` pages get their
 * values as they are); the chat's answers keep their documented shape.
 */
@Injectable()
export class WrapInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (isChatSystemRoute(context) || Reflect.getMetadata(RENDER_METADATA, context.getHandler())) return next.handle();
    return next.handle().pipe(map((data: unknown) => ({ data })));
  }
}

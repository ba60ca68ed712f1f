import { type ExecutionContext, SetMetadata } from '@nestjs/common';

/** Metadata on every controller of the chat system (the value is `true`). */
export const CHAT_SYSTEM_ROUTE = 'nest-chat-system:route';

/** Marks a controller as ours (ChatSystemModule applies it). */
export const ChatSystemRoute = () => SetMetadata(CHAT_SYSTEM_ROUTE, true);

/**
 * Whether the request being handled is one of the chat system's routes: a host's global
 * interceptor that reshapes answers (`{ data: … }`) returns `next.handle()` untouched for these,
 * so our JSON stays as docs/protocol.md says. Works in guards, interceptors, pipes and filters.
 */
export function isChatSystemRoute(context: ExecutionContext): boolean {
  return Reflect.getMetadata(CHAT_SYSTEM_ROUTE, context.getClass()) === true;
}

/**
 * nest-chat-system as a library: import `ChatSystemModule` into a Nest app, call `configureChatSystem`
 * (or `configureApp` when the chat owns the whole app), and add message types with a module of your
 * own whose provider is a `@FrameGateway()` with `@OnFrame(type, Dto)` on its `handleMessage`. Everything a host or a handler needs is
 * exported here; anything not exported is internal and may change.
 */

// Mounting the chat system.
/** The dynamic module (`forRoot` / `forRootAsync`) and its options. */
export { CHAT_SYSTEM_CONFIG, ChatSystemModule } from './chat-system.module';
export type {
  ChatSystemAsyncOptions,
  ChatSystemConfig,
  ChatSystemConfigFactory,
  ChatSystemMounting,
  ChatSystemOptions,
  ChatSystemSettings,
} from './chat-system.module';
/** `configureChatSystem(app)` for a host with routes of its own; `configureApp(app)` for the standalone server. */
export { configureApp, configureChatSystem } from './configure-app';
/** Where the chat is mounted (`basePath`, `wsPath`): injectable, e.g. to link to the chat from the host's pages. */
export { MountPoint } from './common/mount';
/** The validated settings, injectable (the same names as the environment variables). */
export { Environment } from './config/environment';

// Writing a message handler.
/** The default socket path (`wsPath` of the module's options moves it) and the protocol version of `connected`. */
export { WS_PATH, PROTOCOL_VERSION } from './transport/ws-path';
/**
 * `@FrameGateway()` marks a provider whose `@OnFrame(type, Dto)` methods handle frames on the chat's
 * socket (frame validation, `error` frames; Nest's guards, interceptors and filters run around them).
 * `@FrameBody()`, `@ConnectionId()`, `@FrameSocket()` name a handler's parameters when it is not `handleMessage(frame, connectionId)`.
 */
export { ConnectionId, FrameBody, FrameGateway, FrameSocket, OnFrame } from './transport/frame-gateway.decorator';
/** The chat's socket server (its `wsPath`); started and closed by Nest's lifecycle, nothing to call. */
export { FrameSocketServer } from './transport/frame-socket.server';
/** What every gateway implements: `handleMessage(frame, connectionId)` and `broadcast(frame)`. */
export type { MessageHandler } from './transport/message-handler';
/** Frames, both ways: one JSON object with a string `type`. */
export type { ClientFrame, ErrorFrame, Frame, MessageStatus, SequencedFrame } from './transport/frames';
/** Open sockets and rooms: `send` to one connection, `publish` to a room, `broadcast` to all, `join`/`leave`, `userOf`. */
export { ConnectionRegistry, connectionIdOf } from './transport/connection-registry';
export type { Connection, ConnectionUser } from './transport/connection-registry';
/** Delivers a frame to a room's viewers on every instance (use it rather than the registry for rooms). */
export { Fanout } from './transport/fanout';
/** The one error type: throw it with a code; the WS and HTTP edges turn it into an `error` frame or a status. */
export { AppError } from './common/app-error';
export type { ErrorCode } from './common/app-error';

// Ports a host can replace, and what handlers may use.
/** The model port (`stream(request)`: a cold Observable of events; unsubscribing aborts the request). */
export { LlmProvider } from './llm/llm.provider';
export type { LlmEvent, LlmMessage, LlmRequest, LlmRetry, LlmUsage } from './llm/llm.provider';
/** Who sends a request: bind your own to use your app's auth instead of our accounts. */
export { UserResolver } from './auth/user-resolver';
export { LOCAL_USER } from './auth/auth-user';
export type { AuthUser } from './auth/auth-user';
/** Our HTTP guard (CSRF origin check + UserResolver), `@Public()` to open a route, `@CurrentUser()` to read the user. */
export { AuthGuard } from './auth/auth.guard';
export { CurrentUser, Public } from './auth/auth.decorators';
/** Chats of a user, with ownership checks (`getChat(id, userId)` throws `not_found` for another's chat). */
export { ChatService, chatRoom } from './chat/chat.service';
export type { ChatView, MessageView } from './chat/chat.service';
/** For a token-based host's `UserResolver`: the request's bearer token (header, or our pages' socket subprotocol). */
export { bearerToken } from './auth/bearer-token';
/** `isChatSystemRoute(context)`: a host's global interceptor leaves our answers alone with it (our JSON is docs/protocol.md's). */
export { CHAT_SYSTEM_ROUTE, isChatSystemRoute } from './common/chat-system-route';

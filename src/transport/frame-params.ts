import { assignMetadata } from '@nestjs/common';

/**
 * The parameters a frame handler can take. Pipes see each as a 'custom' parameter: our
 * FrameValidationPipe validates the frame (data `FRAME_PARAM`) against its DTO, while a host's global
 * ValidationPipe leaves all three alone, as it does custom parameters by default.
 */
export enum FrameParamtype {
  SOCKET = 100,
  FRAME = 101,
  CONNECTION_ID = 102,
}

/** Where the parameter decorators below record themselves (read by FrameRouter through ExternalContextCreator). */
export const FRAME_ARGS = 'nest-chat-system:frame-args';

/** The `data` of the frame parameter: how FrameValidationPipe tells it from the socket and the connection id. */
export const FRAME_PARAM = 'frame';

function frameParam(type: FrameParamtype, data?: string): () => ParameterDecorator {
  return () => (target, key, index) => {
    const owner = target.constructor;
    const args = (Reflect.getMetadata(FRAME_ARGS, owner, key!) as object | undefined) ?? {};
    Reflect.defineMetadata(FRAME_ARGS, assignMetadata(args, type, index, data), owner, key!);
  };
}

/** The validated frame (a DTO instance of the frame's `@OnFrame` type). */
export const FrameBody = frameParam(FrameParamtype.FRAME, FRAME_PARAM);
/** The `ws` socket the frame came on. */
export const FrameSocket = frameParam(FrameParamtype.SOCKET);
/** The id the registry gave the frame's connection. */
export const ConnectionId = frameParam(FrameParamtype.CONNECTION_ID);

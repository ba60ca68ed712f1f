import { HttpException, Logger } from '@nestjs/common';
import { WsException } from '@nestjs/websockets';
import { AppError } from '../common/app-error';
import type { ErrorFrame } from './frames';

const logger = new Logger('WsErrors');

/** Maps anything thrown while handling a frame to the `error` frame the client gets. */
export function toErrorFrame(error: unknown, requestId?: string): ErrorFrame {
  let frame: ErrorFrame;
  if (error instanceof AppError) {
    frame = { type: 'error', code: error.code, message: error.message, ...error.details };
  } else if (error instanceof WsException) {
    const reason = error.getError();
    frame = { type: 'error', code: 'invalid_message', message: typeof reason === 'string' ? reason : 'invalid message' };
  } else if (error instanceof HttpException && error.getStatus() === 400) {
    frame = { type: 'error', code: 'invalid_message', message: error.message };
  } else if (error instanceof HttpException && error.getStatus() === 403) {
    // A guard said no (Nest's pipeline throws ForbiddenException for a guard's `false`).
    frame = { type: 'error', code: 'forbidden', message: error.message };
  } else {
    logger.error(`unhandled error while handling a frame: ${(error as Error)?.stack ?? String(error)}`);
    frame = { type: 'error', code: 'internal', message: 'internal error' };
  }
  if (requestId !== undefined) frame.id = requestId;
  return frame;
}

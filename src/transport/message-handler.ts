import type { Frame } from './frames';

/**
 * What every gateway on `WS_PATH` implements (the seed's `MessageHandler` trait): one entry point
 * for its inbound frames, and a way to send a frame to everyone concerned.
 */
export interface MessageHandler<M extends { type: string } = Frame> {
  handleMessage(msg: M, connectionId: string): Promise<void> | void;
  broadcast(msg: Frame): void;
}

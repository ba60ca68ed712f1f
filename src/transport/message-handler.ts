import type { Frame } from './frames';

/**
 * What every `@FrameGateway()` implements (the seed's `MessageHandler` trait): one entry point for
 * its inbound frames, and a way to send a frame to everyone concerned. It is the seam the transport
 * routes through: `@OnFrame(type, Dto)` goes on `handleMessage`, and FrameRouter calls
 * `handleMessage(validatedFrame, connectionId)` inside Nest's pipeline for each of those types.
 */
export interface MessageHandler<M extends { type: string } = Frame> {
  handleMessage(msg: M, connectionId: string): Promise<void> | void;
  broadcast(msg: Frame): void;
}

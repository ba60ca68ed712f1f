import { Injectable } from '@nestjs/common';
import { ConnectionRegistry } from './connection-registry';
import { Frame } from './frames';

/**
 * Delivers a frame to every viewer of a room, wherever they are connected. The in-memory one serves a
 * single process; a Redis one (scale-out) can replace it without touching publishers.
 */
export abstract class Fanout {
  abstract publish(room: string, frame: Frame): void;
}

@Injectable()
export class LocalFanout extends Fanout {
  constructor(private readonly registry: ConnectionRegistry) {
    super();
  }

  publish(room: string, frame: Frame): void {
    this.registry.publish(room, frame);
  }
}

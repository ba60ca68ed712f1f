import { ConnectionRegistry } from '../transport/connection-registry';
import { FrameGateway, OnFrame } from '../transport/frame-gateway.decorator';
import { Frame } from '../transport/frames';
import { MessageHandler } from '../transport/message-handler';
import { StopDto } from './dto/stop.dto';
import { StopRegistry } from './stop.registry';

/** `stop` ends any job by id — a chat answer or a Solver run — so neither module owns the frame. */
@FrameGateway()
export class StopGateway implements MessageHandler<StopDto & { type: 'stop' }> {
  constructor(
    private readonly stops: StopRegistry,
    private readonly registry: ConnectionRegistry,
  ) {}

  @OnFrame('stop', StopDto)
  handleMessage(msg: StopDto & { type: 'stop' }, connectionId: string): Promise<void> {
    const userId = this.registry.userOf(connectionId).id;
    return msg.run_id !== undefined && msg.message_id === undefined
      ? this.stops.stop(msg.run_id, userId, 'run_id')
      : this.stops.stop(msg.message_id!, userId, 'message_id');
  }

  broadcast(msg: Frame): void {
    this.registry.broadcast(msg);
  }
}

import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import type { WebSocket } from 'ws';
import { ConnectionRegistry, connectionIdOf } from '../transport/connection-registry';
import { Fanout } from '../transport/fanout';
import { FrameGateway } from '../transport/frame-gateway.decorator';
import { Frame } from '../transport/frames';
import { MessageHandler } from '../transport/message-handler';
import { SolveDto } from './dto/solve.dto';
import { WatchRunDto } from './dto/watch-run.dto';
import { runRoom } from './solver-run';
import { SolverService } from './solver.service';

type SolverFrame = (SolveDto & { type: 'solve' }) | (WatchRunDto & { type: 'solver_watch' });

/**
 * Solver frames on `/ws`: a validated `solve` or `solver_watch` in, one service call. `stop` with a `run_id` reaches
 * the run through the StopRegistry, not through this gateway.
 */
@FrameGateway()
export class SolverGateway implements MessageHandler<SolverFrame> {
  constructor(
    private readonly solver: SolverService,
    private readonly registry: ConnectionRegistry,
    private readonly fanout: Fanout,
  ) {}

  @SubscribeMessage('solve')
  onSolve(@MessageBody() dto: SolveDto, @ConnectedSocket() socket: WebSocket): Promise<void> {
    return this.handleMessage({ ...dto, type: 'solve' }, connectionIdOf(socket));
  }

  @SubscribeMessage('solver_watch')
  onWatch(@MessageBody() dto: WatchRunDto, @ConnectedSocket() socket: WebSocket): Promise<void> {
    return this.handleMessage({ ...dto, type: 'solver_watch' }, connectionIdOf(socket));
  }

  handleMessage(msg: SolverFrame, connectionId: string): Promise<void> {
    return msg.type === 'solve' ? this.solver.solve(msg, connectionId) : this.solver.watch(msg, connectionId);
  }

  /** To the run's viewers when the frame names a run, else to every connection. */
  broadcast(msg: Frame): void {
    if (typeof msg.run_id === 'string') this.fanout.publish(runRoom(msg.run_id), msg);
    else this.registry.broadcast(msg);
  }
}

import { ConnectionRegistry } from '../transport/connection-registry';
import { Fanout } from '../transport/fanout';
import { FrameGateway, OnFrame } from '../transport/frame-gateway.decorator';
import { Frame } from '../transport/frames';
import { MessageHandler } from '../transport/message-handler';
import { SolveDto } from './dto/solve.dto';
import { WatchRunDto } from './dto/watch-run.dto';
import { runRoom } from './solver-run';
import { SolverService } from './solver.service';

type SolverFrame = (SolveDto & { type: 'solve' }) | (WatchRunDto & { type: 'solver_watch' });

/**
 * Solver frames on the socket: a validated `solve` or `solver_watch` in, one service call. `stop` with a `run_id` reaches
 * the run through the StopRegistry, not through this gateway.
 */
@FrameGateway()
export class SolverGateway implements MessageHandler<SolverFrame> {
  constructor(
    private readonly solver: SolverService,
    private readonly registry: ConnectionRegistry,
    private readonly fanout: Fanout,
  ) {}

  @OnFrame('solve', SolveDto)
  @OnFrame('solver_watch', WatchRunDto)
  handleMessage(msg: SolverFrame, connectionId: string): Promise<void> {
    return msg.type === 'solve' ? this.solver.solve(msg, connectionId) : this.solver.watch(msg, connectionId);
  }

  /** To the run's viewers when the frame names a run, else to every connection. */
  broadcast(msg: Frame): void {
    if (typeof msg.run_id === 'string') this.fanout.publish(runRoom(msg.run_id), msg);
    else this.registry.broadcast(msg);
  }
}

import { Logger } from '@nestjs/common';
import type { MessagesRepository } from '../storage/messages.repository';
import type { Fanout } from '../transport/fanout';
import { storedEndFrame } from './generation';
import type { InstanceLiveness } from './instance-liveness';
import type { GenerationLog } from './generation-log';

/**
 * With Redis, after each heartbeat: the answers of instances that stopped beating are ended as
 * `interrupted`, with every piece the shared log holds (often more than the row's last snapshot), and
 * their viewers are told. An instance alive, or one that wrote the row after it was first found
 * missing (it woke up), keeps its answers.
 */
export class DeadInstanceSweeper {
  private readonly logger = new Logger('GenerationService');

  constructor(
    private readonly ownInstanceId: string,
    private readonly messages: MessagesRepository,
    private readonly liveness: InstanceLiveness,
    private readonly log: GenerationLog,
    private readonly fanout: Fanout,
  ) {}

  async sweep(): Promise<void> {
    const rows = await this.messages.listStreamingElsewhere(this.ownInstanceId);
    const dead = await this.liveness.dead(rows.flatMap((row) => (row.instance_id ? [row.instance_id] : [])));
    for (const row of rows) {
      const missingSince = row.instance_id ? dead.get(row.instance_id) : -Infinity;
      if (missingSince === undefined || Date.parse(row.updated_at) >= missingSince) continue;
      const text = await this.log.textOf(row);
      if (!(await this.messages.interruptIfStreaming(row.id, text))) continue;
      this.logger.warn(`answer ${row.id} of a dead instance marked interrupted`);
      const frame = storedEndFrame({ ...row, ...text, status: 'interrupted' });
      // The chat's room name (chat.service's chatRoom): the one place generation/ spells it.
      this.fanout.publish(`chat:${row.chat_id}`, frame);
    }
  }
}

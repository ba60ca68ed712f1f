import { Injectable } from '@nestjs/common';
import { type Chat, ChatsRepository } from './chats.repository';
import { type Message, MessagesRepository } from './messages.repository';

/** The rows a chat turn adds: its new chat (if any), its messages, the answers its new answer replaces. */
export interface TurnRows {
  newChat?: Chat;
  messages: Message[];
  /** Ids of the answers a regenerated answer (`replacedBy`) takes the place of. */
  replaces?: { ids: string[]; by: string };
  /** What must be done before the rows are written (a settings update, joining the chat's room). */
  before?: () => Promise<void>;
}

/**
 * Writes a turn's rows, and places that write on the event loop around the turn's model request:
 * the one seam where a turn's storage is scheduled (domain services only say what to write).
 */
@Injectable()
export class TurnStore {
  constructor(
    private readonly chats: ChatsRepository,
    private readonly messages: MessagesRepository,
  ) {}

  /** `before`, then the new chat with the messages (or the messages alone) in one transaction, then the replaced answers marked. */
  async write(turn: TurnRows): Promise<void> {
    await turn.before?.();
    if (turn.newChat) await this.chats.insert(turn.newChat, turn.messages);
    else await this.messages.insertMany(turn.messages);
    if (turn.replaces?.ids.length) await this.messages.markReplaced(turn.replaces.ids, turn.replaces.by);
  }

  /**
   * `write` for a turn whose model request was started just now, in the running promise chain.
   *
   * Before: node:http writes a request on the next tick, and ticks wait until the promise chain that
   * is running ends; SQLite queries through Kysely resolve within that chain, so without a tick
   * first the rows would be written before the request leaves.
   *
   * After: one more turn of the event loop, so that what the model sent while the rows were written
   * (its bytes wait in the socket) is read in it and leaves with the caller's next frames in one
   * socket write instead of a write of its own. Waking a reader costs the writer ~0.15-0.5 ms here
   * (bench/findings.md); the wait is that turn's I/O.
   */
  async writeBehindRequest(turn: TurnRows): Promise<void> {
    await new Promise<void>((resolve) => process.nextTick(resolve));
    await this.write(turn);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

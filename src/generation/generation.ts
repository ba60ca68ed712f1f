import type { Subscription } from 'rxjs';
import type { ErrorCode } from '../common/app-error';
import type { LlmRequest, LlmUsage } from '../llm/llm.provider';
import type { Message } from '../storage/messages.repository';
import type { Frame, MessageStatus, SequencedFrame } from '../transport/frames';

export interface GenerationSpec {
  chatId: string;
  messageId: string;
  /** The client's `id` of the frame that started it; carried on every frame of the generation. */
  requestId?: string;
  model: string;
  request: LlmRequest;
  /** Fanout room the frames go to. */
  room: string;
  /** The user it runs for: only they may stop it. */
  ownerId: string;
  /** Extra fields for `agent_response_start` (e.g. `omitted_turns`, `previous_versions`). */
  startFields?: Record<string, unknown>;
  /**
   * The message's row (and what must precede the answer's frames) being written while the model
   * request is already out. Until it resolves the generation's frames are held and nothing of it is
   * written; if it rejects, the generation is dropped without a frame or a write (the caller reports).
   */
  stored?: Promise<void>;
}

/** One assistant message being generated: its text so far, its numbered log and how it ended. */
export class Generation {
  seq = 0;
  content = '';
  reasoning = '';
  usage: LlmUsage | null = null;
  status: MessageStatus = 'streaming';
  errorCode: ErrorCode | null = null;
  /** The model's own finish_reason, when it gave one (`length`: cut short by the token limit). */
  finishReason: string | null = null;
  /**
   * What a `resume` replays, kept small (a running answer holds one entry per frame): per numbered
   * frame, where its text ends in `content` or `reasoning` (times 2, plus 1 for reasoning); the
   * frames are rebuilt from the text when asked for (`framesAfter`).
   */
  private readonly marks: number[] = [];
  /** `agent_response_end`, once sent. */
  endLogged?: Frame;
  subscription?: Subscription;
  /** Text changed since the last snapshot. */
  dirty = false;
  /** Frames waiting for `spec.stored` (undefined once they may go out). */
  held?: Frame[];
  /** `spec.stored` failed: the generation was dropped. */
  abandoned = false;
  /** Set once the end is being written, so the end happens exactly once. */
  ending = false;
  readonly startedAt = Date.now();
  readonly done: Promise<void>;
  resolveDone!: () => void;

  constructor(readonly spec: GenerationSpec) {
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  get messageId(): string {
    return this.spec.messageId;
  }

  /** Fields every frame of this generation carries. */
  base(type: string): Frame {
    const frame: Frame = { type, chat_id: this.spec.chatId, message_id: this.spec.messageId };
    if (this.spec.requestId !== undefined) frame.id = this.spec.requestId;
    return frame;
  }

  piece(kind: 'reasoning' | 'content', text: string): SequencedFrame {
    this.seq += 1;
    if (kind === 'reasoning') this.reasoning += text;
    else this.content += text;
    this.dirty = true;
    this.marks.push((kind === 'reasoning' ? this.reasoning.length : this.content.length) * 2 + (kind === 'reasoning' ? 1 : 0));
    return this.pieceFrame(kind, this.seq, text);
  }

  private pieceFrame(kind: 'reasoning' | 'content', seq: number, text: string): SequencedFrame {
    const frame = this.base(kind === 'reasoning' ? 'agent_reasoning' : 'agent_response') as SequencedFrame;
    frame.seq = seq;
    frame.content = text;
    return frame;
  }

  endFrame(): Frame {
    const frame = this.base('agent_response_end');
    frame.seq = this.seq;
    frame.status = this.status;
    frame.content = this.content;
    if (this.reasoning) frame.reasoning = this.reasoning;
    if (this.usage) frame.usage = this.usage;
    if (this.finishReason) frame.finish_reason = this.finishReason;
    return frame;
  }

  /** Frames a viewer that has seen up to `afterSeq` still needs (the end frame included once ended). */
  framesAfter(afterSeq: number): Frame[] {
    const out: Frame[] = [];
    const from = { content: 0, reasoning: 0 };
    this.marks.forEach((mark, index) => {
      const kind = mark % 2 === 1 ? 'reasoning' : 'content';
      const end = Math.floor(mark / 2);
      if (index + 1 > afterSeq) out.push(this.pieceFrame(kind, index + 1, this[kind].slice(from[kind], end)));
      from[kind] = end;
    });
    if (this.endLogged) out.push(this.endLogged);
    return out;
  }
}

/** `agent_response_end` of a stored answer (its log no longer in memory, or its instance gone). */
export function storedEndFrame(row: Message): Frame {
  const frame: Frame = { type: 'agent_response_end', chat_id: row.chat_id, message_id: row.id, seq: row.seq, status: row.status, content: row.content };
  if (row.request_id) frame.id = row.request_id;
  if (row.reasoning) frame.reasoning = row.reasoning;
  if (row.usage) frame.usage = row.usage;
  if (row.finish_reason) frame.finish_reason = row.finish_reason;
  return frame;
}

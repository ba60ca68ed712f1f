import type { Subscription } from 'rxjs';
import type { ErrorCode } from '../common/app-error';
import type { LlmRequest, LlmUsage } from '../llm/llm.provider';
import type { Message, MessageSnapshot } from '../storage/messages.repository';
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

/**
 * One assistant message being generated: its text so far, its numbered log and how it ended. It makes
 * its own state changes (`piece`, `hold`/`release`, `beginEnd`, `abandon`, `end`, ...); what is read
 * from outside is read-only there.
 */
export class Generation {
  private _seq = 0;
  private _content = '';
  private _reasoning = '';
  private _usage: LlmUsage | null = null;
  private _status: MessageStatus = 'streaming';
  private _errorCode: ErrorCode | null = null;
  /** The model's own finish_reason, when it gave one (`length`: cut short by the token limit). */
  private _finishReason: string | null = null;
  /**
   * What a `resume` replays, kept small (a running answer holds one entry per frame): per numbered
   * frame, where its text ends in `content` or `reasoning` (times 2, plus 1 for reasoning); the
   * frames are rebuilt from the text when asked for (`framesAfter`).
   */
  private readonly marks: number[] = [];
  /** `agent_response_end`, once sent. */
  private endLogged?: Frame;
  /** The model request, cancelled when the end begins. */
  private subscription?: Subscription;
  /** Text changed since the last snapshot. */
  private dirty = false;
  /** Frames waiting for `spec.stored` (undefined once they may go out). */
  private held?: Frame[];
  /** `spec.stored` failed: the generation was dropped. */
  private _abandoned = false;
  /** Set once the end is being written, so the end happens exactly once. */
  private _ending = false;
  readonly startedAt = Date.now();
  /** Resolves once the generation ended (its end stored and sent) or was dropped. */
  readonly done: Promise<void>;
  private resolveDone!: () => void;

  constructor(readonly spec: GenerationSpec) {
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    if (spec.stored) this.held = [];
  }

  get messageId(): string {
    return this.spec.messageId;
  }

  get seq(): number {
    return this._seq;
  }

  get content(): string {
    return this._content;
  }

  get reasoning(): string {
    return this._reasoning;
  }

  get usage(): LlmUsage | null {
    return this._usage;
  }

  get status(): MessageStatus {
    return this._status;
  }

  get errorCode(): ErrorCode | null {
    return this._errorCode;
  }

  get finishReason(): string | null {
    return this._finishReason;
  }

  get abandoned(): boolean {
    return this._abandoned;
  }

  get ending(): boolean {
    return this._ending;
  }

  /** Its frames are held: its row is still being written (`spec.stored`). */
  get isHeld(): boolean {
    return this.held !== undefined;
  }

  /** The model request it runs on (cancelled by `beginEnd` and `abandon`). */
  watch(subscription: Subscription): void {
    this.subscription = subscription;
  }

  recordUsage(usage: LlmUsage): void {
    this._usage = usage;
  }

  /** The model finished, with its own reason when it gave one. */
  finishedBy(reason: string | null): void {
    this._finishReason = reason;
  }

  failedWith(code: ErrorCode): void {
    this._errorCode = code;
  }

  /** Keeps the frame while the row is being written: true when it was kept (it must not go out now). */
  hold(frame: Frame): boolean {
    if (this.held === undefined) return false;
    this.held.push(frame);
    return true;
  }

  /** The row is stored: the frames kept meanwhile, in order, to send now; none are held from now on. */
  release(): Frame[] {
    const held = this.held ?? [];
    this.held = undefined;
    return held;
  }

  /** Its end begins (once: false when it already has): upstream is cancelled, the status final. */
  beginEnd(status: MessageStatus): boolean {
    if (this._ending) return false;
    this._ending = true;
    this._status = status;
    this.subscription?.unsubscribe();
    return true;
  }

  /** Its row could not be stored: dropped as `error`, upstream cancelled, nothing held any more. */
  abandon(): void {
    this._abandoned = true;
    this.held = undefined;
    this._ending = true;
    this._status = 'error';
    this.subscription?.unsubscribe();
  }

  /** Its end frame, kept for `resume` from now on. */
  end(): Frame {
    const frame = this.endFrame();
    this.endLogged = frame;
    return frame;
  }

  /** It ended or was dropped: `done` resolves. */
  settle(): void {
    this.resolveDone();
  }

  /** Its text for a snapshot when it changed since the last one (undefined when it did not). */
  takeSnapshot(): MessageSnapshot | undefined {
    if (!this.dirty) return undefined;
    this.dirty = false;
    return { id: this.messageId, content: this._content, reasoning: this._reasoning || null, seq: this._seq };
  }

  /** A snapshot taken was not written: it is due again. */
  snapshotFailed(): void {
    this.dirty = true;
  }

  /** Fields every frame of this generation carries. */
  base(type: string): Frame {
    const frame: Frame = { type, chat_id: this.spec.chatId, message_id: this.spec.messageId };
    if (this.spec.requestId !== undefined) frame.id = this.spec.requestId;
    return frame;
  }

  /** A numbered piece of text: added to its text and log, as the frame that sends it. */
  piece(kind: 'reasoning' | 'content', text: string): SequencedFrame {
    this._seq += 1;
    if (kind === 'reasoning') this._reasoning += text;
    else this._content += text;
    this.dirty = true;
    this.marks.push((kind === 'reasoning' ? this._reasoning.length : this._content.length) * 2 + (kind === 'reasoning' ? 1 : 0));
    return this.pieceFrame(kind, this._seq, text);
  }

  private pieceFrame(kind: 'reasoning' | 'content', seq: number, text: string): SequencedFrame {
    const frame = this.base(kind === 'reasoning' ? 'agent_reasoning' : 'agent_response') as SequencedFrame;
    frame.seq = seq;
    frame.content = text;
    return frame;
  }

  private endFrame(): Frame {
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

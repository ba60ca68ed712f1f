import type { Chat } from '../storage/chats.repository';
import type { Message } from '../storage/messages.repository';
import type { Frame, MessageStatus } from '../transport/frames';

/** The fanout room of a chat: every connection watching it. */
export const chatRoom = (chatId: string): string => `chat:${chatId}`;

export interface ChatView {
  id: string;
  title: string;
  created_at: string;
  updated_at: string;
}

export interface MessageView {
  id: string;
  role: 'user' | 'assistant';
  content: string;
  reasoning?: string | null;
  status: string;
  created_at: string;
  /** Last seq included in `content`/`reasoning` (assistant messages). */
  seq?: number;
  model?: string | null;
  /** Ids of the earlier versions of this place, oldest first: a regenerated answer's, an edited user message's. */
  previous_versions?: string[];
  attachments?: { id: string; name: string; size: number }[];
  /** Older turns the answer's model request left out (only when some were). */
  omitted_turns?: number;
  /** The model's own finish_reason of an ended answer (`length`: cut short), when it gave one. */
  finish_reason?: string;
  /** An ended answer's usage figures, when the model reported them (as on `agent_response_end`). */
  usage?: Record<string, unknown>;
  /** An ended answer's time from its request to its end (not for imported answers). */
  duration_ms?: number;
}

/** What a view reads of an answer still streaming in this process (a `Generation`). */
export interface LiveText {
  content: string;
  reasoning: string;
  status: MessageStatus;
  seq: number;
}

export function toChatView(chat: Chat): ChatView {
  return { id: chat.id, title: chat.title, created_at: chat.created_at, updated_at: chat.updated_at };
}

/** A message as stored, with `live` text where it is still streaming in this process. */
export function toMessageView(row: Message, live: LiveText | undefined): MessageView {
  const view: MessageView = { id: row.id, role: row.role, content: row.content, status: row.status, created_at: row.created_at };
  if (row.previous_versions.length) view.previous_versions = row.previous_versions;
  if (row.role === 'assistant') {
    view.content = live ? live.content : row.content;
    view.reasoning = live ? live.reasoning || null : row.reasoning;
    view.status = live ? live.status : row.status;
    view.seq = live ? live.seq : row.seq;
    view.model = row.model;
    if (row.omitted_turns && row.omitted_turns > 0) view.omitted_turns = row.omitted_turns;
    if (row.finish_reason && !live) view.finish_reason = row.finish_reason;
    if (!live && row.status !== 'streaming') Object.assign(view, endedFigures(row));
  }
  return view;
}

/** An ended answer's usage and time taken: its row is made as its request goes out and last written at its end. */
function endedFigures(row: Message): Pick<MessageView, 'usage' | 'duration_ms'> {
  const figures: Pick<MessageView, 'usage' | 'duration_ms'> = {};
  if (row.usage) figures.usage = row.usage;
  const ms = Date.parse(row.updated_at) - Date.parse(row.created_at);
  // Imported answers have no model and no time of their own.
  if (row.model && Number.isFinite(ms) && ms > 0) figures.duration_ms = ms;
  return figures;
}

/** The frame with the client's `id` of the frame it answers, when there was one. */
export function withId(frame: Frame, id: string | undefined): Frame {
  if (id !== undefined) frame.id = id;
  return frame;
}

import { AppError } from '../common/app-error';
import type { ChatView, MessageView } from './chat-views';

export type ChatExport = ChatView & { format: 'chat-export'; version: 1; messages: MessageView[] };

export function toExport(chat: ChatView & { messages: MessageView[] }): ChatExport {
  return { format: 'chat-export', version: 1, ...chat };
}

/** A download's name: the chat's title made safe for a file name (at most 80 characters), else `chat-<id>`. */
export function exportFileName(chat: ChatView, format: 'json' | 'md'): string {
  const name = chat.title
    .replace(/[\u0000-\u001f\u007f/\\?%*:|"<>]+/g, ' ')
    .replace(/\s+/g, ' ')
    .replace(/^[\s.]+|[\s.]+$/g, '')
    .slice(0, 80)
    .trim();
  return `${name || `chat-${chat.id}`}.${format}`;
}

export function toMarkdown(chat: ChatView & { messages: MessageView[] }): string {
  const lines = [`# ${chat.title}`, '', `_Exported ${new Date().toISOString()} · created ${chat.created_at}_`, ''];
  for (const message of chat.messages) {
    lines.push(`## ${message.role === 'user' ? 'You' : 'Assistant'}`, '');
    if (message.omitted_turns) lines.push(`_(${message.omitted_turns} older turn(s) left out of the model's context)_`, '');
    if (message.reasoning) lines.push('<details><summary>Thinking</summary>', '', message.reasoning, '', '</details>', '');
    lines.push(message.content, '');
    if (message.role === 'assistant' && message.status !== 'complete') lines.push(`_(${message.status})_`, '');
  }
  return lines.join('\n');
}

export interface ImportedMessage {
  role: 'user' | 'assistant';
  content: string;
  reasoning: string | null;
  status: 'complete' | 'stopped' | 'interrupted' | 'error';
  /** Older turns the answer's request left out (answers only; anything but a positive integer is dropped). */
  omitted_turns: number | null;
}

const ENDED = new Set(['complete', 'stopped', 'interrupted', 'error']);

/** Checks a JSON export completely before anything is written: at most `maxMessages` messages (IMPORT_MAX_MESSAGES). */
export function parseImport(body: unknown, maxMessages: number): { title: string; messages: ImportedMessage[] } {
  const bad = (why: string) => new AppError('invalid_message', `not a chat export: ${why}`);
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw bad('the body is not a JSON object');
  const data = body as Record<string, unknown>;
  if (data.format !== 'chat-export') throw bad('format must be "chat-export"');
  if (data.version !== 1) throw bad('version must be 1');
  if (!Array.isArray(data.messages)) throw bad('messages must be an array');
  if (data.messages.length > maxMessages) {
    throw new AppError('payload_too_large', `the import has ${data.messages.length} messages; at most ${maxMessages} (IMPORT_MAX_MESSAGES)`);
  }
  const messages = data.messages.map((raw: unknown, index: number): ImportedMessage => {
    if (!raw || typeof raw !== 'object') throw bad(`messages[${index}] is not an object`);
    const m = raw as Record<string, unknown>;
    if (m.role !== 'user' && m.role !== 'assistant') throw bad(`messages[${index}].role must be user or assistant`);
    if (typeof m.content !== 'string') throw bad(`messages[${index}].content must be a string`);
    return {
      role: m.role,
      content: m.content,
      reasoning: typeof m.reasoning === 'string' ? m.reasoning : null,
      status: typeof m.status === 'string' && ENDED.has(m.status) ? (m.status as ImportedMessage['status']) : 'complete',
      omitted_turns:
        m.role === 'assistant' && Number.isSafeInteger(m.omitted_turns) && (m.omitted_turns as number) > 0 && (m.omitted_turns as number) <= index
          ? (m.omitted_turns as number)
          : null,
    };
  });
  const title = typeof data.title === 'string' && data.title.trim() ? data.title.trim().slice(0, 200) : 'Imported chat';
  return { title, messages };
}

import { type LlmMessage } from '../llm/llm.provider';
import type { ChatSettings } from '../storage/chats.repository';
import { type ContextMessage } from '../storage/messages.repository';

export type { ChatSettings };

const SETTING_KEYS: (keyof ChatSettings)[] = ['model', 'thinking', 'temperature', 'max_tokens', 'system_prompt'];

/** Options given with a message merge into the chat's settings; `null` resets a field. */
export function mergeSettings(current: ChatSettings, options: Partial<Record<keyof ChatSettings, unknown>> | undefined): ChatSettings {
  if (!options) return current;
  const next: Record<string, unknown> = { ...current };
  for (const key of SETTING_KEYS) {
    if (!(key in options) || options[key] === undefined) continue;
    if (options[key] === null) delete next[key];
    else next[key] = options[key];
  }
  return next as ChatSettings;
}

/** About four characters a token: the estimate docs/protocol.md allows. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4) + 4;
}

/** A message's text as the model sees it: its attached files' text follows it. */
export function withAttachedText(content: string, files: readonly { name: string; content: string }[]): string {
  return content + files.map((f) => `\n\n--- Attached file: ${f.name} ---\n${f.content}\n--- End of ${f.name} ---`).join('');
}

/**
 * The attachments whose text could still go with a turn: those of user messages whose newer turns do
 * not already fill `budget` on a low estimate (a file has at least one character per 3 bytes).
 * `buildContext` leaves every older turn out anyway, so their files need not be read.
 */
export function attachmentsWithinBudget(history: ContextMessage[], sizes: ReadonlyMap<string, number>, budget: number): string[] {
  const ids: string[] = [];
  let newer = 0;
  for (let i = history.length - 1; i >= 0 && newer <= budget; i--) {
    const row = history[i];
    if (row.role !== 'user') continue;
    const own = row.attachments;
    ids.push(...own);
    newer += estimateTokens(row.content) + own.reduce((sum, id) => sum + Math.floor((sizes.get(id) ?? 0) / 12), 0);
  }
  return ids;
}

export interface Context {
  messages: LlmMessage[];
  /** Whole turns left out, oldest first, to fit the budget. */
  omittedTurns: number;
}

/**
 * The model's view of a chat: system prompt, then whole turns (a user message and the answers to it)
 * newest-first until `budget` tokens, kept in order. The newest turn and the system prompt always go.
 * Answers without text (failed) and reasoning are never sent back.
 */
export function buildContext(history: ContextMessage[], systemPrompt: string | undefined, budget: number): Context {
  const turns: LlmMessage[][] = [];
  for (const row of history) {
    if (row.role === 'user') {
      turns.push([{ role: 'user', content: row.content }]);
    } else if (row.content && row.status !== 'streaming' && turns.length) {
      turns[turns.length - 1].push({ role: 'assistant', content: row.content });
    }
  }
  let used = systemPrompt ? estimateTokens(systemPrompt) : 0;
  const kept: LlmMessage[][] = [];
  for (let i = turns.length - 1; i >= 0; i--) {
    const cost = turns[i].reduce((sum, m) => sum + estimateTokens(m.content), 0);
    if (kept.length > 0 && used + cost > budget) break;
    used += cost;
    kept.unshift(turns[i]);
  }
  const messages: LlmMessage[] = systemPrompt ? [{ role: 'system', content: systemPrompt }] : [];
  for (const turn of kept) messages.push(...turn);
  return { messages, omittedTurns: turns.length - kept.length };
}

/**
 * A new chat's title from its first message: its first line with words in it (code fences skipped),
 * Markdown stripped, whitespace collapsed, at most 60 characters, cut at a word.
 */
export function titleFrom(content: string): string {
  const line =
    content
      .split(/\r?\n/)
      .map(plainLine)
      .find((l) => l.length > 0) ?? '';
  if (line.length <= 60) return line || 'New chat';
  const cut = line.slice(0, 60);
  const space = cut.lastIndexOf(' ');
  return `${(space > 30 ? cut.slice(0, space) : cut).trimEnd()}…`;
}

/** One line of Markdown as plain words: no fences, headings, quotes, list marks, emphasis, code ticks or link targets. */
export function plainLine(line: string): string {
  return line
    .replace(/(```|~~~)[\w+#.-]*/g, ' ')
    .replace(/^\s*(#{1,6}\s+|>\s*|[-*+]\s+\[[ xX]\]\s+|[-*+]\s+|\d+[.)]\s+)+/, '')
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/(\*\*|__|~~|`+)/g, '')
    .replace(/(^|[\s(])[*_]([^*_\s][^*_]*?)[*_](?=[\s).,!?:;]|$)/g, '$1$2')
    .replace(/\s+/g, ' ')
    .trim();
}

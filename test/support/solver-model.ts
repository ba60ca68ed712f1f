import type { Scenario } from '../fakes/deepseek.fake';

/**
 * What the fake model answers in Solver tests (e2e and Chromium): the kinds of request a run makes,
 * and answers shaped as the model gives them.
 */
export type SolverRequestKind = 'files' | 'solution' | 'repair' | 'chat';

/** Which step of a run (or a chat turn) a model request belongs to, from its system prompt. */
export function solverRequestKind(body: any): SolverRequestKind {
  const messages: Array<{ role: string; content: string }> = body?.messages ?? [];
  const system = messages[0]?.role === 'system' ? messages[0].content : '';
  if (system.includes('file-selection step')) return 'files';
  if (system.includes('You fix GitHub issues')) return messages[messages.length - 1].content.includes('does not apply') ? 'repair' : 'solution';
  return 'chat';
}

/** A solution answer: an explanation, then the diff in a fenced block. */
export const answer = (explanation: string, diff: string): string => `${explanation}\n\n\`\`\`diff\n${diff}\`\`\`\n`;

/** Text in pieces of about `size` characters, as a model streams it. */
export const pieces = (text: string, size = 24): string[] => text.match(new RegExp(`[\\s\\S]{1,${size}}`, 'g')) ?? [];

/** A streamed answer of `content` with a little reasoning first. */
export const stream = (content: string, extra: Partial<Extract<Scenario, { kind: 'stream' }>> = {}): Scenario => ({
  kind: 'stream',
  reasoning: ['Let me look ', 'at the loop.'],
  content: pieces(content),
  ...extra,
});

import type { LlmMessage } from '../llm/llm.provider';
import type { CommentInfo, IssueInfo } from './github.client';
import type { IssueRef } from './issue-url';

/** Most files the model may pick; more rarely helps and costs context. */
export const MAX_SELECTED_FILES = 8;
const MAX_ISSUE_CHARS = 12_000;
const MAX_COMMENT_CHARS = 2_000;
const MAX_COMMENTS_CHARS = 10_000;

export interface IssueContext {
  ref: IssueRef;
  issue: IssueInfo;
  comments: CommentInfo[];
}

export interface SourceFile {
  path: string;
  text: string;
}

const clip = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)}\n… (cut)` : text);

/** The issue as the model reads it: title, state, body and the first comments. */
export function issueText({ ref, issue, comments }: IssueContext): string {
  const parts = [
    `# Issue ${ref.owner}/${ref.repo}#${issue.number}: ${issue.title}`,
    `(${issue.state}, opened by @${issue.author})`,
    '',
    clip(issue.body.trim() || '(no description)', MAX_ISSUE_CHARS),
  ];
  if (comments.length) {
    parts.push('', '## Comments');
    let used = 0;
    for (const c of comments) {
      const text = `@${c.author}: ${clip(c.body.trim(), MAX_COMMENT_CHARS)}`;
      if (used + text.length > MAX_COMMENTS_CHARS) {
        parts.push('… (more comments left out)');
        break;
      }
      used += text.length;
      parts.push('', text);
    }
  }
  return parts.join('\n');
}

export const FILES_SYSTEM_PROMPT = [
  'You are the file-selection step of an automated GitHub issue solver.',
  'You get an issue and a map of the repository (paths, sizes, top-level declarations).',
  `Answer with a JSON object only, of the form {"files": ["path/one.ts", "path/two.py"]}: at most ${MAX_SELECTED_FILES} paths,`,
  'copied exactly from the map, most important first: the files that must change to fix the issue,',
  'then the ones needed to understand them. No prose, no code fences: JSON only.',
].join(' ');

export function filesMessages(issue: string, repoMap: string, branch: string): LlmMessage[] {
  return [
    { role: 'system', content: FILES_SYSTEM_PROMPT },
    { role: 'user', content: `${issue}\n\n# Repository map (default branch \`${branch}\`)\n\n${repoMap}\n\nReply with the JSON object.` },
  ];
}

export const SOLUTION_SYSTEM_PROMPT = [
  'You fix GitHub issues. You get the issue and the current text of the relevant files of the repository.',
  'Reply with a short explanation (a few sentences: the cause and the fix), then the fix as ONE unified diff',
  'in a single ```diff fenced block: `--- a/PATH` and `+++ b/PATH` headers with paths relative to the repository',
  'root, `@@ -l,n +l,n @@` hunks with 3 lines of unchanged context copied exactly from the files as shown',
  '(same indentation and spelling). A new file uses `--- /dev/null`. Change only what the fix needs.',
].join(' ');

const fenceFor = (text: string) => {
  let fence = '```';
  while (text.includes(fence)) fence += '`';
  return fence;
};

export function solutionMessages(issue: string, files: SourceFile[], notes: string[]): LlmMessage[] {
  const shown = files.map((f) => {
    const fence = fenceFor(f.text);
    return `## ${f.path}\n${fence}\n${f.text}${f.text.endsWith('\n') ? '' : '\n'}${fence}`;
  });
  const extra = notes.length ? `\n\n${notes.map((n) => `Note: ${n}`).join('\n')}` : '';
  return [
    { role: 'system', content: SOLUTION_SYSTEM_PROMPT },
    {
      role: 'user',
      content: `${issue}\n\n# Files (default branch)\n\n${shown.join('\n\n')}${extra}\n\nExplain briefly, then give the fix as one \`\`\`diff block.`,
    },
  ];
}

/** The follow-up of one repair round: the previous exchange, then why its diff does not apply. */
export function repairMessages(previous: LlmMessage[], answer: string, reasons: string[]): LlmMessage[] {
  return [
    ...previous,
    { role: 'assistant', content: answer },
    {
      role: 'user',
      content: [
        'Your diff does not apply to the files as given:',
        ...reasons.map((r) => `- ${r}`),
        '',
        'Reply with a corrected short explanation and ONE complete ```diff block for the whole fix,',
        'with context lines copied exactly from the files above.',
      ].join('\n'),
    },
  ];
}

/**
 * The paths of a `{"files": [...]}` reply, read tolerantly: JSON mode may not be honoured by every
 * endpoint, so fences are stripped and the first `{…}` object is taken; a bare array also counts.
 */
export function parseFilesReply(content: string): string[] {
  const text = content.replace(/```(?:json)?/gi, '').trim();
  for (const candidate of jsonCandidates(text)) {
    let value: unknown;
    try {
      value = JSON.parse(candidate);
    } catch {
      continue;
    }
    const list = Array.isArray(value) ? value : (value as { files?: unknown })?.files;
    if (Array.isArray(list)) {
      return list
        .map((item) => (typeof item === 'string' ? item : (item as { path?: unknown })?.path))
        .filter((p): p is string => typeof p === 'string' && p.trim() !== '')
        .map((p) => p.trim());
    }
  }
  return [];
}

/** The whole text, then each balanced `{…}` / `[…]` span, first first. */
function* jsonCandidates(text: string): Generator<string> {
  yield text;
  for (const open of ['{', '[']) {
    const close = open === '{' ? '}' : ']';
    let start = text.indexOf(open);
    while (start >= 0) {
      const end = balancedEnd(text, start, open, close);
      if (end > start) yield text.slice(start, end + 1);
      start = text.indexOf(open, start + 1);
    }
  }
}

function balancedEnd(text: string, start: number, open: string, close: string): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') inString = true;
    else if (ch === open) depth++;
    else if (ch === close && --depth === 0) return i;
  }
  return -1;
}

/**
 * Patch checking: find the unified diff in a model's answer, parse it leniently (models miscount hunk
 * lines, drop the space of blank context lines, omit line numbers), place its hunks in the real files
 * with bounded tolerance (hunk-placement.ts), and re-make a clean patch from the result (the `diff`
 * package). Pure functions.
 */
import { createTwoFilesPatch, FILE_HEADERS_ONLY } from 'diff';
import { fileLines, type Hunk, placeHunk, type Placement } from './hunk-placement';

export type { Hunk } from './hunk-placement';

export interface FilePatch {
  /** Paths as written, `a/`/`b/` prefixes kept; null for /dev/null. */
  oldPath: string | null;
  newPath: string | null;
  hunks: Hunk[];
}

export interface FileOutcome {
  path: string;
  ok: boolean;
  /** Applied only with tolerant matching (whitespace or fuzz). */
  fuzzy: boolean;
  created: boolean;
  deleted: boolean;
  before?: string;
  after?: string;
  reason?: string;
}

export interface ApplyResult {
  /** Every file of the diff applied and something changed. */
  applies: boolean;
  files: FileOutcome[];
  /** Why it does not apply, one line per problem (empty when it applies). */
  reasons: string[];
  /** A clean unified diff of the change when it applies (no fuzz needed), else ''. */
  patch: string;
}

const FENCE = /^\s*(`{3,}|~{3,})\s*([\w+-]*)/;

/**
 * The unified diff in a model's answer: the ```diff (or ```patch) blocks, else any fenced block that
 * looks like a diff, else everything from the first `diff --git`/`---` header. An unclosed block at
 * the end counts (a stopped answer, or a model that forgot the closing fence).
 */
export function extractDiff(text: string): string | undefined {
  const blocks = fencedBlocks(text);
  const diffs = blocks.filter((b) => /^(diff|patch|udiff)$/i.test(b.info)).map((b) => b.body);
  if (diffs.length) return joinBlocks(diffs);
  const looking = blocks.filter((b) => looksLikeDiff(b.body)).map((b) => b.body);
  if (looking.length) return joinBlocks(looking);
  const start = text.search(/^(diff --git |--- \S.*\n\+\+\+ )/m);
  if (start >= 0 && blocks.length === 0) return text.slice(start).trimEnd() + '\n';
  return undefined;
}

/** The answer without its diff: the model's explanation. */
export function explanationOf(text: string): string {
  const lines = text.split('\n');
  const out: string[] = [];
  let fence: string | undefined;
  let skipping = false;
  for (const line of lines) {
    const match = FENCE.exec(line);
    if (fence === undefined && match) {
      fence = match[1];
      skipping = /^(diff|patch|udiff)$/i.test(match[2]);
      if (!skipping) out.push(line);
      continue;
    }
    if (fence !== undefined && new RegExp(`^\\s*${fence[0]}{${fence.length},}\\s*$`).test(line)) {
      if (!skipping) out.push(line);
      fence = undefined;
      skipping = false;
      continue;
    }
    if (!skipping) out.push(line);
  }
  return out
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

function joinBlocks(blocks: string[]): string {
  return blocks.map((b) => (b.endsWith('\n') ? b : `${b}\n`)).join('');
}

function looksLikeDiff(body: string): boolean {
  return /^@@ /m.test(body) && /^(\+\+\+ |--- )/m.test(body);
}

function fencedBlocks(text: string): Array<{ info: string; body: string }> {
  const blocks: Array<{ info: string; body: string }> = [];
  let open: { fence: string; info: string; lines: string[] } | undefined;
  for (const line of text.split('\n')) {
    if (!open) {
      const match = FENCE.exec(line);
      if (match) open = { fence: match[1], info: match[2] ?? '', lines: [] };
      continue;
    }
    const trimmed = line.trim();
    if (trimmed.length >= open.fence.length && /^(`+|~+)$/.test(trimmed) && trimmed[0] === open.fence[0]) {
      blocks.push({ info: open.info, body: open.lines.join('\n') });
      open = undefined;
      continue;
    }
    open.lines.push(line);
  }
  if (open) blocks.push({ info: open.info, body: open.lines.join('\n') });
  return blocks;
}

const GIT_META =
  /^(index |new file mode|deleted file mode|old mode|new mode|similarity index|dissimilarity index|rename from|rename to|copy from|copy to|Binary files)/;
const HUNK_HEADER = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@/;

/**
 * Parses a unified diff the way a patient reviewer reads it: hunk line counts are recomputed from the
 * body, a blank line inside a hunk is a blank context line, a line without a prefix is context, and
 * hunks may lack line numbers.
 */
export function parseDiffLenient(diff: string): FilePatch[] {
  const files: FilePatch[] = [];
  let file: FilePatch | undefined;
  let hunk: Hunk | undefined;
  const lines = diff.replace(/\r\n/g, '\n').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith('diff --git ')) {
      const match = /^diff --git (\S+) (\S+)$/.exec(line);
      file = { oldPath: match?.[1] ?? null, newPath: match?.[2] ?? null, hunks: [] };
      files.push(file);
      hunk = undefined;
      continue;
    }
    if (line.startsWith('--- ') && lines[i + 1]?.startsWith('+++ ')) {
      const oldPath = headerPath(line.slice(4));
      const newPath = headerPath(lines[i + 1].slice(4));
      // A `diff --git` header just opened this file: the ---/+++ pair refines it.
      if (!file || file.hunks.length > 0 || hunk) {
        file = { oldPath, newPath, hunks: [] };
        files.push(file);
      } else {
        file.oldPath = oldPath;
        file.newPath = newPath;
      }
      hunk = undefined;
      i++;
      continue;
    }
    if (!hunk && GIT_META.test(line)) {
      if (file && line.startsWith('new file mode')) file.oldPath = null;
      if (file && line.startsWith('deleted file mode')) file.newPath = null;
      continue;
    }
    if (line.startsWith('@@')) {
      if (!file) {
        file = { oldPath: null, newPath: null, hunks: [] };
        files.push(file);
      }
      const match = HUNK_HEADER.exec(line);
      hunk = { oldStart: match ? Number(match[1]) : undefined, header: line, lines: [] };
      file.hunks.push(hunk);
      continue;
    }
    if (!hunk) continue;
    if (line === '') hunk.lines.push(' ');
    else if (' +-\\'.includes(line[0])) hunk.lines.push(line);
    else hunk.lines.push(` ${line}`);
  }
  for (const f of files) {
    for (const h of f.hunks) {
      while (h.lines.length && h.lines[h.lines.length - 1] === ' ') h.lines.pop();
    }
    f.hunks = f.hunks.filter((h) => h.lines.some((l) => l[0] === '+' || l[0] === '-'));
  }
  return files.filter((f) => f.hunks.length > 0 || f.newPath === null);
}

function headerPath(raw: string): string | null {
  let path = raw.split('\t')[0].trim();
  if (path.startsWith('"') && path.endsWith('"')) path = path.slice(1, -1);
  return path === '/dev/null' ? null : path;
}

/** Candidate repository paths for a path as written in a diff. */
function candidates(written: string): string[] {
  const clean = written.replace(/^\.\//, '').replace(/^\/+/, '');
  const stripped = clean.replace(/^[ab]\//, '');
  return stripped === clean ? [clean] : [stripped, clean];
}

/** The repository path a diff path names: the first candidate that exists, else the usual a/b-less one. */
export function resolvePath(written: string, exists: (path: string) => boolean): string {
  const options = candidates(written);
  return options.find(exists) ?? options[0];
}

/** Repository paths the diff touches (for fetching them before `applyDiff`). */
export function pathsOfDiff(diff: string, exists: (path: string) => boolean): string[] {
  const out = new Set<string>();
  for (const file of parseDiffLenient(diff)) {
    const written = file.newPath ?? file.oldPath;
    if (written) out.add(resolvePath(written, exists));
  }
  return [...out];
}

/** The text of a created file: its added lines (the header's line numbers do not matter). */
function newFileText(hunks: Hunk[]): string {
  const lines = hunks.flatMap((h) => h.lines);
  const added = lines.filter((l) => l[0] === '+').map((l) => l.slice(1));
  const noNewline = lines.length > 0 && lines[lines.length - 1].startsWith('\\');
  return added.join('\n') + (noNewline ? '' : '\n');
}

/**
 * Applies a file's hunks: each is placed in the text as it was (hunk-placement.ts), then all are
 * applied bottom-up. The reason names the hunk and the exact mismatch when one cannot be placed.
 */
function applyHunks(text: string, hunks: Hunk[], path: string): { text: string; fuzzy: boolean } | { reason: string } {
  const lines = text.split('\n');
  const file = fileLines(lines);
  const label = (index: number) => `${path}: hunk ${index + 1} (${hunks[index].header.slice(0, 60)})`;
  const placed: Array<Placement & { index: number }> = [];
  for (let index = 0; index < hunks.length; index++) {
    const result = placeHunk(hunks[index], file);
    if (!result.ok) return { reason: `${label(index)}: ${result.reason}` };
    placed.push({ ...result.placement, index });
  }
  placed.sort((x, y) => x.start - y.start || x.end - y.end);
  for (let i = 1; i < placed.length; i++) {
    if (placed[i].start < placed[i - 1].end) {
      return { reason: `${label(placed[i].index)}: it overlaps hunk ${placed[i - 1].index + 1} (both change line ${placed[i].start + 1})` };
    }
  }
  for (const p of [...placed].reverse()) lines.splice(p.start, p.end - p.start, ...p.replacement);
  return { text: lines.join('\n'), fuzzy: placed.some((p) => p.fuzzy) };
}

const fileLabel = (path: string) => `\`${path}\``;

/**
 * Applies a diff to the files it names. `sources` holds the current text of every existing file the
 * diff touches (a path missing from it does not exist). When every file applies, `patch` is re-made
 * from before/after so it applies without fuzz, whatever tolerance was needed to place the hunks.
 */
export function applyDiff(diff: string | undefined, sources: Map<string, string>): ApplyResult {
  if (!diff || !diff.trim()) {
    return { applies: false, files: [], reasons: ['the answer has no unified diff in a ```diff block'], patch: '' };
  }
  const parsed = parseDiffLenient(diff);
  if (!parsed.length) {
    return { applies: false, files: [], reasons: ['the ```diff block holds no hunks (`@@ … @@` with -/+ lines)'], patch: '' };
  }
  const exists = (path: string) => sources.has(path);
  const outcomes = new Map<string, FileOutcome>();
  const reasons: string[] = [];

  for (const file of parsed) {
    const written = file.newPath ?? file.oldPath;
    if (!written) {
      reasons.push('a hunk has no file header (`--- a/PATH` / `+++ b/PATH`)');
      continue;
    }
    const path = resolvePath(written, exists);
    const previous = outcomes.get(path);
    if (previous && !previous.ok) continue;
    const creating = file.oldPath === null;
    const deleting = file.newPath === null;
    const outcome: FileOutcome = previous ?? {
      path,
      ok: true,
      fuzzy: false,
      created: creating && !exists(path),
      deleted: false,
      before: sources.get(path),
    };
    outcomes.set(path, outcome);
    let text = previous ? previous.after : sources.get(path);
    if (text === undefined) {
      if (!creating) {
        outcome.ok = false;
        outcome.reason = `${fileLabel(path)} does not exist in the repository`;
        reasons.push(outcome.reason);
        continue;
      }
      text = '';
    } else if (creating && !previous) {
      outcome.ok = false;
      outcome.reason = `${fileLabel(path)} already exists; change it with a diff against its current text instead of creating it`;
      reasons.push(outcome.reason);
      continue;
    }
    if (creating && text === '') {
      outcome.after = newFileText(file.hunks);
      continue;
    }
    const applied = applyHunks(text, file.hunks, path);
    if ('reason' in applied) {
      outcome.ok = false;
      outcome.reason = applied.reason;
      reasons.push(outcome.reason);
      continue;
    }
    text = applied.text;
    outcome.fuzzy ||= applied.fuzzy;
    if (deleting) {
      if (text.trim() !== '') {
        outcome.ok = false;
        outcome.reason = `${fileLabel(path)}: the diff deletes the file but does not remove all of its lines`;
        reasons.push(outcome.reason);
        continue;
      }
      outcome.deleted = true;
    }
    outcome.after = text;
  }

  const files = [...outcomes.values()];
  const changed = changedFiles({ files });
  if (!reasons.length && !changed.length) reasons.push('the diff changes nothing');
  const applies = reasons.length === 0;
  return { applies, files, reasons, patch: applies ? cleanPatch(changed) : '' };
}

/** The files a result really changes (applied, and different from before). */
export function changedFiles(result: Pick<ApplyResult, 'files'>): FileOutcome[] {
  return result.files.filter((f) => f.ok && (f.deleted || f.created || f.after !== f.before));
}

/** A git-style unified diff of before/after texts, 3 lines of context, applying without fuzz. */
export function cleanPatch(files: FileOutcome[]): string {
  return files
    .map((f) => {
      const oldName = f.created ? '/dev/null' : `a/${f.path}`;
      const newName = f.deleted ? '/dev/null' : `b/${f.path}`;
      const body = createTwoFilesPatch(oldName, newName, f.before ?? '', f.deleted ? '' : (f.after ?? ''), undefined, undefined, {
        context: 3,
        headerOptions: FILE_HEADERS_ONLY,
      });
      const mode = f.created ? 'new file mode 100644\n' : f.deleted ? 'deleted file mode 100644\n' : '';
      return `diff --git a/${f.path} b/${f.path}\n${mode}${body}`;
    })
    .join('');
}

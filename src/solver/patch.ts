/**
 * Patch checking: find the unified diff in a model's answer, parse it leniently (models miscount hunk
 * lines, drop the space of blank context lines, omit line numbers), apply it to the real files with
 * the `diff` package, and re-make a clean patch from the result. Pure functions.
 */
import { applyPatch, createTwoFilesPatch, FILE_HEADERS_ONLY, StructuredPatch } from 'diff';

export interface Hunk {
  /** From the `@@` header; undefined when the model wrote none. */
  oldStart?: number;
  header: string;
  /** ' ', '-', '+' or '\' prefixed, as in a unified diff. */
  lines: string[];
}

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
  return out.join('\n').replace(/\n{3,}/g, '\n\n').trim();
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

const GIT_META = /^(index |new file mode|deleted file mode|old mode|new mode|similarity index|dissimilarity index|rename from|rename to|copy from|copy to|Binary files)/;
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

const oldSide = (hunk: Hunk): string[] =>
  hunk.lines.filter((l) => l[0] === ' ' || l[0] === '-').map((l) => l.slice(1));

function toStructured(hunk: Hunk, oldStart: number): StructuredPatch {
  const body = hunk.lines;
  const oldLines = body.filter((l) => l[0] === ' ' || l[0] === '-').length;
  const newLines = body.filter((l) => l[0] === ' ' || l[0] === '+').length;
  return {
    oldFileName: 'a',
    newFileName: 'b',
    oldHeader: undefined,
    newHeader: undefined,
    hunks: [{ oldStart, oldLines, newStart: oldStart, newLines, lines: body }],
  };
}

/** 1-based line where the hunk's old side is found (exactly, then ignoring whitespace), if anywhere. */
export function locateHunk(hunk: Hunk, source: string): number | undefined {
  const wanted = oldSide(hunk);
  if (!wanted.length) return undefined;
  const lines = source.split('\n');
  for (const same of [(a: string, b: string) => a === b, (a: string, b: string) => squash(a) === squash(b)]) {
    for (let start = 0; start + wanted.length <= lines.length; start++) {
      let k = 0;
      while (k < wanted.length && same(lines[start + k], wanted[k])) k++;
      if (k === wanted.length) return start + 1;
    }
  }
  return undefined;
}

const squash = (line: string): string => line.replace(/\s+/g, ' ').trim();

type Strategy = { fuzzy: boolean; fuzzFactor: number; compareLine?: (n: number, line: string, op: string, content: string) => boolean };

const STRATEGIES: Strategy[] = [
  { fuzzy: false, fuzzFactor: 0 },
  { fuzzy: true, fuzzFactor: 0, compareLine: (_n, line, _op, content) => line?.trimEnd() === content.trimEnd() },
  { fuzzy: true, fuzzFactor: 0, compareLine: (_n, line, _op, content) => line !== undefined && squash(line) === squash(content) },
  { fuzzy: true, fuzzFactor: 2, compareLine: (_n, line, _op, content) => line !== undefined && squash(line) === squash(content) },
];

/** The text of a created file: its added lines (the header's line numbers do not matter). */
function newFileText(hunks: Hunk[]): string {
  const lines = hunks.flatMap((h) => h.lines);
  const added = lines.filter((l) => l[0] === '+').map((l) => l.slice(1));
  const noNewline = lines.length > 0 && lines[lines.length - 1].startsWith('\\');
  return added.join('\n') + (noNewline ? '' : '\n');
}

/** Applies one hunk, strict first, then more and more tolerant. */
function applyHunk(source: string, hunk: Hunk): { text: string; fuzzy: boolean } | undefined {
  const start = locateHunk(hunk, source) ?? hunk.oldStart ?? 1;
  const patch = toStructured(hunk, Math.max(1, start));
  for (const strategy of STRATEGIES) {
    let result: string | false;
    try {
      result = applyPatch(source, patch, { fuzzFactor: strategy.fuzzFactor, compareLine: strategy.compareLine });
    } catch {
      result = false;
    }
    if (result !== false) return { text: result, fuzzy: strategy.fuzzy };
  }
  return undefined;
}

/** Why a hunk does not fit: the first line of its old side that the file lacks, or where it nearly fits. */
export function describeMismatch(hunk: Hunk, source: string, index: number, path: string): string {
  const label = `${path}: hunk ${index + 1} (${hunk.header.slice(0, 60)})`;
  const lines = source.split('\n');
  const present = new Set(lines.map(squash));
  const wanted = oldSide(hunk);
  const missing = wanted.find((l) => squash(l) !== '' && !present.has(squash(l)));
  if (missing !== undefined) return `${label}: the line \`${missing.trim().slice(0, 120)}\` is not in the file`;
  const first = wanted.find((l) => squash(l) !== '');
  const at = first === undefined ? -1 : lines.findIndex((l) => squash(l) === squash(first));
  const where = at >= 0 ? ` (its first line is at line ${at + 1}, but the lines after it differ)` : '';
  return `${label}: its context and removed lines are not consecutive in the file${where}`;
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
    // Place hunks in file order, wherever the model said they were.
    const ordered = file.hunks
      .map((hunk, index) => ({ hunk, index, at: locateHunk(hunk, text!) ?? hunk.oldStart ?? 0 }))
      .sort((a, b) => a.at - b.at);
    // Apply from the bottom up so earlier hunks keep their positions.
    for (const { hunk, index } of ordered.reverse()) {
      const applied = applyHunk(text!, hunk);
      if (!applied) {
        outcome.ok = false;
        outcome.reason = describeMismatch(hunk, text!, index, path);
        reasons.push(outcome.reason);
        break;
      }
      text = applied.text;
      outcome.fuzzy ||= applied.fuzzy;
    }
    if (!outcome.ok) continue;
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

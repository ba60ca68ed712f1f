/**
 * Where a model's hunk belongs in a file, tolerating what models really write: whitespace that
 * differs inside lines, blank lines missing or added, wrong or missing line numbers, a paraphrased
 * context line, `...` standing for unchanged code. Bounded: every `-` line must be in the file
 * (whitespace aside), few context lines may differ, and the hunk must fit one place only — else no
 * placement, and a reason that names the exact mismatch for the repair round.
 */

/** One `@@` hunk of a file's patch (patch.ts parses them). */
export interface Hunk {
  /** From the `@@` header; undefined when the model wrote none. */
  oldStart?: number;
  header: string;
  /** ' ', '-', '+' or '\' prefixed, as in a unified diff. */
  lines: string[];
}

export interface Placement {
  /** 0-based first file line the hunk replaces. */
  start: number;
  /** 0-based line after the last one it replaces. */
  end: number;
  /** The lines that take their place (context lines as the file has them). */
  replacement: string[];
  /** Anything but an exact match was needed. */
  fuzzy: boolean;
}

export type PlacementResult = { ok: true; placement: Placement } | { ok: false; reason: string };

/** Context lines that may differ from the file, or file lines the diff lacks, per hunk (fewer than those that match). */
const MAX_SUBSTITUTIONS = 2;
/** File lines × hunk lines tried at most: about 50 ms of matching on the event loop. */
const MAX_WORK = 1_000_000;
/** How far `...` may stand for unchanged lines. */
const MAX_ELIDED = 400;

/** Whitespace never matters for matching: `shout(s){` is `shout(s) {`. */
const bare = (line: string): string => line.replace(/\s+/g, '');
const isBlank = (line: string): boolean => bare(line) === '';
/** `...`, `// ...`, `# ...`, `…` (also in a block comment): a model's "unchanged code here". */
const isElision = (line: string): boolean => /^(\/\/|#|--|\/\*|<!--)?(\.\.\.|…)(rest|unchanged|existingcode|code)?[\w.…]*(\*\/|-->)?$/i.test(bare(line));

interface Step {
  op: ' ' | '-' | '+';
  text: string;
  /** The text without whitespace, as matching compares it. */
  key: string;
  /** A `...` line standing for unchanged code. */
  elision: boolean;
}

interface Alignment {
  end: number;
  replacement: string[];
  cost: number;
  exact: boolean;
}

interface Failure {
  /** Hunk line index and file line where it failed. */
  step: number;
  at: number;
  /** Context lines taken as paraphrased on the way there (fewer: a likelier place). */
  substitutions?: number;
}

/** The hunk's lines as steps (markers like `\ No newline` dropped). */
function stepsOf(hunk: Hunk): Step[] {
  return hunk.lines
    .filter((l) => l[0] === ' ' || l[0] === '-' || l[0] === '+')
    .map((l) => ({ op: l[0] as Step['op'], text: l.slice(1), key: bare(l.slice(1)), elision: l[0] === ' ' && isElision(l.slice(1)) }));
}

/** Aligns the hunk's old side with the file from line `start`; the replacement, or where it failed. */
function align(steps: Step[], lines: string[], bareLines: string[], start: number, eol: string, build = false): Alignment | Failure {
  // Scoring every start builds nothing; the chosen one is aligned again with `build`.
  const out: string[] = [];
  const keep = build ? (line: string) => void out.push(line) : () => undefined;
  let f = start;
  let substitutions = 0;
  let matched = 0;
  let cost = 0;
  for (let i = 0; i < steps.length; i++) {
    const { op, text, key, elision } = steps[i];
    if (op === '+') {
      keep(text + eol);
      continue;
    }
    if (elision) {
      // Unchanged code up to the next line the hunk names.
      const next = steps.slice(i + 1).find((s) => s.op !== '+' && s.key !== '' && !s.elision);
      if (!next) return { step: i, at: f };
      let skipped = 0;
      while (f < lines.length && bareLines[f] !== next.key && skipped < MAX_ELIDED) {
        keep(lines[f++]);
        skipped++;
      }
      if (f >= lines.length || skipped >= MAX_ELIDED) return { step: i, at: f, substitutions };
      cost += 1;
      continue;
    }
    for (;;) {
      const line = lines[f];
      if (line !== undefined && bareLines[f] === key && (key !== '' || isBlank(line))) {
        const exact = line === text || (line.length === text.length + 1 && line.endsWith('\r') && line.startsWith(text));
        if (key !== '') matched += 1;
        if (!exact) cost += 1;
        if (op === ' ') keep(line);
        f++;
        break;
      }
      // Blank-line drift, both ways: a blank the file lacks, or one the diff lacks.
      if (key === '' && op === ' ') {
        cost += 1;
        break;
      }
      if (line !== undefined && bareLines[f] === '' && f > start) {
        keep(line);
        f++;
        cost += 1;
        continue;
      }
      // Lines the file has and the diff lacks (the file moved on since the model read it): kept.
      const ahead = key === '' ? undefined : bareLines[f + 1] === key ? 1 : bareLines[f + 2] === key ? 2 : undefined;
      if (line !== undefined && ahead !== undefined && substitutions + ahead <= MAX_SUBSTITUTIONS) {
        for (let k = 0; k < ahead; k++) keep(lines[f++]);
        substitutions += ahead;
        cost += 10 * ahead;
        continue;
      }
      // A context line the model paraphrased: the file's line stays.
      if (op === ' ' && line !== undefined && substitutions < MAX_SUBSTITUTIONS) {
        substitutions += 1;
        cost += 10;
        keep(line);
        f++;
        break;
      }
      return { step: i, at: f, substitutions };
    }
  }
  const removes = steps.some((s) => s.op === '-');
  if (matched === 0 || substitutions >= Math.max(1, matched) || (!removes && substitutions > 0 && matched < 2)) return { step: steps.length, at: f };
  return { end: f, replacement: out, cost, exact: cost === 0 };
}

const isAlignment = (a: Alignment | Failure): a is Alignment => 'replacement' in a;

/** A failure that got further, or as far with fewer paraphrased lines. */
const closer = (a: Failure, b: Failure): boolean => a.step > b.step || (a.step === b.step && (a.substitutions ?? 0) < (b.substitutions ?? 0));

/** A file as every hunk placed in it reads it: made once per file, not once per hunk. */
export interface FileLines {
  /** The file split on `\n`. */
  lines: string[];
  /** Each line without whitespace, as matching compares them. */
  bareLines: string[];
  present: Set<string>;
  /** `\r` when most lines end with it. */
  eol: string;
}

export function fileLines(lines: string[]): FileLines {
  const bareLines = lines.map(bare);
  const eol = lines.filter((l) => l.endsWith('\r')).length > lines.length / 2 ? '\r' : '';
  return { lines, bareLines, present: new Set(bareLines), eol };
}

/** Places one hunk in the file, or says exactly why it cannot be placed. */
export function placeHunk(hunk: Hunk, file: FileLines): PlacementResult {
  const { lines, bareLines, present, eol } = file;
  const steps = stepsOf(hunk);
  const firstOld = steps.find((s) => s.op !== '+' && !isBlank(s.text) && !isElision(s.text));
  if (!firstOld) return { ok: false, reason: 'it has no context or removed line to place it by' };
  // A line to remove that the file lacks anywhere: no need to try every start.
  const absent = steps.find((s) => s.op === '-' && s.key !== '' && !present.has(s.key));
  if (absent) return { ok: false, reason: `the line to remove \`${absent.text.trim().slice(0, 120)}\` is not in the file` };
  // Every start is tried: bound the work (this runs on the event loop) for huge files and hunks.
  if (lines.length * steps.length > MAX_WORK)
    return { ok: false, reason: `the file (${lines.length} lines) and hunk (${steps.length} lines) are too large to place; split the hunk` };
  const found: Array<{ start: number; alignment: Alignment }> = [];
  let best: { failure: Failure; start: number } | undefined;
  for (let start = 0; start < lines.length; start++) {
    const result = align(steps, lines, bareLines, start, eol);
    if (isAlignment(result)) found.push({ start, alignment: result });
    else if (result.step < steps.length && (!best || closer(result, best.failure))) best = { failure: result, start };
  }
  if (!found.length) return { ok: false, reason: mismatch(steps, file, best) };
  const lowest = Math.min(...found.map((f) => f.alignment.cost));
  let winners = found.filter((f) => f.alignment.cost === lowest);
  // Nested candidates (a start a few lines earlier that swallows blank lines) are one place.
  const latestStart = new Map<number, number>();
  for (const w of winners) latestStart.set(w.alignment.end, Math.max(latestStart.get(w.alignment.end) ?? -1, w.start));
  winners = winners.filter((w) => latestStart.get(w.alignment.end) === w.start);
  if (winners.length > 1 && hunk.oldStart !== undefined) {
    const hinted = winners.filter((w) => w.start + 1 === hunk.oldStart);
    if (hinted.length === 1) winners = hinted;
  }
  if (winners.length > 1) {
    const at = winners
      .slice(0, 4)
      .map((w) => w.start + 1)
      .join(', ');
    return { ok: false, reason: `its lines fit ${winners.length} places (lines ${at}); give more context so it fits one place only` };
  }
  const [{ start, alignment }] = winners;
  const built = align(steps, lines, bareLines, start, eol, true) as Alignment;
  return { ok: true, placement: { start, end: alignment.end, replacement: built.replacement, fuzzy: !alignment.exact } };
}

/** The exact mismatch where the hunk came closest to fitting. */
// (A line to remove that the file lacks was refused before any start was tried.)
function mismatch(steps: Step[], { lines, present }: FileLines, best: { failure: Failure; start: number } | undefined): string {
  const oldSide = steps.filter((s) => s.op !== '+');
  const context = oldSide.find((s) => !isBlank(s.text) && !isElision(s.text) && !present.has(bare(s.text)));
  if (context) return `the line \`${context.text.trim().slice(0, 120)}\` is not in the file (and no other line can stand in for it)`;
  if (!best) return 'its lines do not fit anywhere in the file';
  const step = steps[best.failure.step];
  const actual = lines[best.failure.at];
  const expected = `\`${step.text.trim().slice(0, 120)}\``;
  if (actual === undefined) return `at the end of the file it expects ${expected}`;
  return `at line ${best.failure.at + 1} the file has \`${actual.trim().slice(0, 120)}\` where the diff has ${expected}`;
}

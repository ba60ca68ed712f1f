/**
 * The compact repository map the model picks files from: paths, sizes and, for source files, their
 * top-level declarations, within a token budget. Pure functions; the service fetches what they ask for.
 */

import { extension, hasDeclarations } from './declarations';

export interface TreeEntry {
  path: string;
  type: 'blob' | 'tree' | 'commit';
  size?: number;
  sha: string;
}

/** Rough size of text in model tokens (about four characters a token). */
export const estimateTokens = (text: string): number => Math.ceil(text.length / 4);

const VENDORED_DIRS = new Set([
  'node_modules',
  'bower_components',
  'jspm_packages',
  'vendor',
  'vendors',
  'third_party',
  'third-party',
  'thirdparty',
  'external',
  'dist',
  'build',
  'out',
  'target',
  'coverage',
  '__pycache__',
  '.venv',
  'venv',
  '.tox',
  '.mypy_cache',
  '.pytest_cache',
  '.gradle',
  '.idea',
  '.vscode',
  '.next',
  '.nuxt',
  '.cache',
  '.git',
  'Pods',
  'Carthage',
  'site-packages',
  '.yarn',
]);

const BINARY_EXTENSIONS = new Set(
  (
    'png jpg jpeg gif bmp ico icns webp avif tiff psd svgz pdf zip gz tgz bz2 xz 7z rar tar jar war ear class ' +
    'so dylib dll exe bin o a lib obj pyc pyo whl egg wasm woff woff2 ttf otf eot mp3 mp4 m4a wav ogg flac webm ' +
    'mov avi mkv sqlite db dat pkl npy npz h5 onnx pt ckpt parquet keystore jks p12 pfx der'
  ).split(' '),
);

/** Lock files and other generated artefacts nobody edits by hand. */
const GENERATED_NAMES = new Set([
  'package-lock.json',
  'npm-shrinkwrap.json',
  'yarn.lock',
  'pnpm-lock.yaml',
  'bun.lockb',
  'Cargo.lock',
  'go.sum',
  'poetry.lock',
  'Pipfile.lock',
  'composer.lock',
  'Gemfile.lock',
  'mix.lock',
  'pubspec.lock',
  '.DS_Store',
]);

const GENERATED_PATTERNS = [
  /\.min\.(js|css|mjs)$/i,
  /\.(js|css)\.map$/i,
  /\.map$/i,
  /\.bundle\.js$/i,
  /\.pb\.go$/,
  /_pb2(_grpc)?\.py$/,
  /\.g\.dart$/,
  /\.generated\.\w+$/i,
  /\.designer\.cs$/i,
  /(^|\/)generated\//i,
  /\.snap$/,
];

/** Files larger than this are not source a model should read (data dumps, fixtures). */
export const MAX_SOURCE_BYTES = 512 * 1024;

/** Why a path is left out of the map, or undefined when it belongs in it. */
export function skipReason(entry: Pick<TreeEntry, 'path' | 'size'>): 'vendored' | 'binary' | 'generated' | 'large' | undefined {
  const parts = entry.path.split('/');
  if (parts.slice(0, -1).some((dir) => VENDORED_DIRS.has(dir))) return 'vendored';
  const name = parts[parts.length - 1];
  if (BINARY_EXTENSIONS.has(extension(name))) return 'binary';
  if (GENERATED_NAMES.has(name) || GENERATED_PATTERNS.some((p) => p.test(entry.path))) return 'generated';
  if ((entry.size ?? 0) > MAX_SOURCE_BYTES) return 'large';
  return undefined;
}

/** Blobs worth mapping: not vendored, binary, generated or huge. */
export function mappableFiles(tree: TreeEntry[]): TreeEntry[] {
  return tree.filter((e) => e.type === 'blob' && !skipReason(e));
}

/** Words of the issue worth matching against paths (identifiers, file names). */
export function keywordsOf(text: string): Set<string> {
  const words = new Set<string>();
  for (const match of text.matchAll(/[A-Za-z_][A-Za-z0-9_]{2,}/g)) {
    const word = match[0].toLowerCase();
    if (!STOP_WORDS.has(word)) words.add(word);
    // camelCase and snake_case parts too: `parseConfig` matches `config.ts`
    for (const part of match[0].split(/(?<=[a-z0-9])(?=[A-Z])|_/)) {
      const p = part.toLowerCase();
      if (p.length > 2 && !STOP_WORDS.has(p)) words.add(p);
    }
  }
  return words;
}

const STOP_WORDS = new Set(
  (
    'the and for are but not you all any can had her was one our out has him his how its may new now old see two way who ' +
    'did get let put say she too use with this that from have they will would there their what when which while into ' +
    'than then them these those been being some such only also just like should could does done were where here very ' +
    'after before other about again because returns return true false null undefined error issue bug when expected ' +
    'actual steps reproduce http https github com'
  ).split(' '),
);

/**
 * How promising a file is for the issue: named in the issue, path words the issue uses, source over
 * docs, shallow over deep. Decides which files get their declarations read and which survive a cut.
 */
export function relevance(entry: TreeEntry, keywords: Set<string>, issueText: string): number {
  let score = 0;
  if (issueText.includes(entry.path)) score += 20;
  const name = entry.path.slice(entry.path.lastIndexOf('/') + 1);
  if (name.length > 3 && issueText.includes(name)) score += 8;
  for (const word of entry.path.toLowerCase().split(/[^a-z0-9]+/)) {
    if (word.length > 2 && keywords.has(word)) score += 3;
  }
  if (hasDeclarations(entry.path)) score += 2;
  if (/(^|\/)(test|tests|spec|__tests__)\/|\.(test|spec)\.\w+$/.test(entry.path)) score -= 1;
  score -= entry.path.split('/').length * 0.25;
  return score;
}

export interface RepoMapInput {
  tree: TreeEntry[];
  truncated: boolean;
  /** Declarations of the files that were read, by path. */
  declarations: Map<string, string[]>;
  /** Higher first when something must be cut. */
  score: (entry: TreeEntry) => number;
  budgetTokens: number;
}

export interface RepoMap {
  text: string;
  /** Paths listed in the map. */
  listed: number;
  /** Mappable paths left out to stay within the budget. */
  omitted: number;
  /** Paths skipped as vendored, binary, generated or large. */
  skipped: number;
  tokens: number;
}

/** Human-readable size, as the map shows it. */
export function formatSize(bytes: number | undefined): string {
  if (bytes === undefined) return '?';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/**
 * The map as text: one line per file (`path (size)`), its declarations indented below. Over budget,
 * declarations of the least relevant files go first, then the least relevant paths themselves.
 */
export function buildRepoMap(input: RepoMapInput): RepoMap {
  const files = mappableFiles(input.tree).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const skipped = input.tree.filter((e) => e.type === 'blob').length - files.length;
  const ranked = [...files].sort((a, b) => input.score(b) - input.score(a) || a.path.localeCompare(b.path));
  const withDeclarations = new Set(files.filter((f) => input.declarations.get(f.path)?.length).map((f) => f.path));
  const kept = new Set(files.map((f) => f.path));
  const header = input.truncated ? '(GitHub truncated this tree: the map is partial)\n' : '';
  const entryLine = (f: TreeEntry) => `${f.path} (${formatSize(f.size)})`;
  const footer = (omitted: number) => `… ${omitted} more file(s) not shown`;

  // Exact character accounting (every line counted with its newline), so cutting needs no re-render.
  const declarationChars = (f: TreeEntry) => input.declarations.get(f.path)!.reduce((n, d) => n + d.length + 3, 0);
  const entryChars = (f: TreeEntry) => entryLine(f).length + 1 + (withDeclarations.has(f.path) ? declarationChars(f) : 0);
  const footerChars = (omitted: number) => (omitted > 0 ? footer(omitted).length + 1 : 0);
  const limit = input.budgetTokens * 4;
  let chars = header.length + files.reduce((n, f) => n + entryChars(f), 0);
  for (let i = ranked.length - 1; i >= 0 && chars > limit; i--) {
    if (!withDeclarations.has(ranked[i].path)) continue;
    chars -= declarationChars(ranked[i]);
    withDeclarations.delete(ranked[i].path);
  }
  for (let i = ranked.length - 1; i >= 0 && chars > limit; i--) {
    const omittedBefore = files.length - kept.size;
    chars -= entryChars(ranked[i]);
    withDeclarations.delete(ranked[i].path);
    kept.delete(ranked[i].path);
    chars += footerChars(omittedBefore + 1) - footerChars(omittedBefore);
  }

  const lines: string[] = [];
  for (const file of files) {
    if (!kept.has(file.path)) continue;
    lines.push(entryLine(file));
    if (withDeclarations.has(file.path)) for (const d of input.declarations.get(file.path)!) lines.push(`  ${d}`);
  }
  const omitted = files.length - kept.size;
  if (omitted > 0) lines.push(footer(omitted));
  const text = header + lines.join('\n');
  return { text, listed: kept.size, omitted, skipped, tokens: estimateTokens(text) };
}

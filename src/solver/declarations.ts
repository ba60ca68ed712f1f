/**
 * Which source files are in which language, and their top-level declarations for the repository map.
 * Pure and dependency-free: it runs in the map's worker thread (declarations.worker.ts).
 */

export type Language = 'ts' | 'py' | 'go' | 'rs' | 'java';

const LANGUAGES: Record<string, Language> = {
  ts: 'ts',
  tsx: 'ts',
  mts: 'ts',
  cts: 'ts',
  js: 'ts',
  jsx: 'ts',
  mjs: 'ts',
  cjs: 'ts',
  py: 'py',
  go: 'go',
  rs: 'rs',
  java: 'java',
  kt: 'java',
};

export const extension = (path: string): string => {
  const name = path.slice(path.lastIndexOf('/') + 1);
  const dot = name.lastIndexOf('.');
  return dot > 0 ? name.slice(dot + 1).toLowerCase() : '';
};

function languageOf(path: string): Language | undefined {
  if (path.endsWith('.d.ts')) return undefined;
  return LANGUAGES[extension(path)];
}

/** Extension → grammar of `tree-sitter-wasms` (files of other languages are listed by path only). */
const GRAMMARS: Record<string, string> = {
  js: 'javascript',
  jsx: 'javascript',
  mjs: 'javascript',
  cjs: 'javascript',
  ts: 'typescript',
  mts: 'typescript',
  cts: 'typescript',
  tsx: 'tsx',
  py: 'python',
  go: 'go',
  rs: 'rust',
  java: 'java',
  kt: 'kotlin',
  c: 'c',
  h: 'cpp',
  cc: 'cpp',
  cpp: 'cpp',
  cxx: 'cpp',
  hpp: 'cpp',
  hh: 'cpp',
  rb: 'ruby',
};

/** The tree-sitter grammar for a path (`tree-sitter-wasms` names); undefined: listed by path only. */
export function grammarOf(path: string): string | undefined {
  if (path.endsWith('.d.ts')) return undefined;
  return GRAMMARS[extension(path)];
}

/** A source file whose declarations the map reads (by its syntax tree, or by patterns: every pattern language has a grammar). */
export const hasDeclarations = (path: string): boolean => grammarOf(path) !== undefined;

const DECLARATIONS: Record<Language, RegExp[]> = {
  ts: [
    /^export\s+(?:default\s+)?(?:declare\s+)?(?:async\s+)?function\*?\s*[\w$]*/,
    /^export\s+(?:default\s+)?(?:declare\s+)?(?:abstract\s+)?class\s+[\w$]+/,
    /^export\s+(?:declare\s+)?(?:const|let|var|interface|type|enum|namespace)\s+[\w$]+/,
    /^export\s+default\s+[\w$]+/,
    /^export\s*\{[^}]*\}/,
    /^(?:async\s+)?function\*?\s*[\w$]+/,
    /^(?:abstract\s+)?class\s+[\w$]+/,
    /^(?:interface|enum)\s+[\w$]+/,
    /^type\s+[\w$]+\s*(?:<[^=]*>)?\s*=/,
    /^(?:const|let|var)\s+[\w$]+\s*=\s*(?:async\s*)?(?:function\b|\([^)]*\)\s*=>|[\w$]+\s*=>)/,
    /^module\.exports\s*=/,
    /^exports\.[\w$]+\s*=/,
  ],
  py: [/^(?:async\s+)?def\s+\w+\s*\(/, /^class\s+\w+/],
  go: [/^func\s+(?:\([^)]*\)\s*)?\w+/, /^type\s+\w+/],
  rs: [
    /^(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?(?:extern\s+"[^"]*"\s+)?fn\s+\w+/,
    /^(?:pub(?:\([^)]*\))?\s+)?(?:struct|enum|trait|union|type|mod)\s+\w+/,
    /^impl\b/,
    /^(?:pub\s+)?macro_rules!\s*\w+/,
  ],
  java: [
    /^(?:(?:public|protected|private|abstract|final|static|sealed|non-sealed|data|open|internal)\s+)*(?:class|interface|enum|record|object)\s+\w+/,
    /^ {2,4}(?:(?:public|protected|private|abstract|final|static|synchronized|override|open|suspend)\s+)+[\w<>[\],.? ]+\s+\w+\s*\(/,
    /^ {2,4}(?:(?:public|protected|private|override|open|suspend)\s+)*fun\s+\w+/,
    /^fun\s+\w+/,
  ],
};

const MAX_DECLARATIONS = 24;
const MAX_DECLARATION_CHARS = 110;

/** A declaration as the map shows it: at most MAX_DECLARATION_CHARS, cut with `…`. */
export function clip(text: string): string {
  return text.length > MAX_DECLARATION_CHARS ? `${text.slice(0, MAX_DECLARATION_CHARS - 1)}…` : text;
}
/**
 * Only this much of a line is looked at. Lines come from anyone's repository: no pattern ever sees
 * more, so none can take long however it backtracks (a signature is far shorter).
 */
export const MAX_LINE_CHARS = 400;
/** Only this much of a file is scanned: declarations past it are not worth the time. */
const MAX_SCANNED_CHARS = 512 * 1024;

/**
 * Top-level declarations of a source file, one line each, trimmed of bodies. Regex-based: good enough
 * to tell a model where things live, not a parser. Linear in the file's length whatever its lines hold.
 */
export function extractDeclarations(path: string, source: string): string[] {
  const language = languageOf(path);
  if (!language) return [];
  const patterns = DECLARATIONS[language];
  const out: string[] = [];
  const text = source.length > MAX_SCANNED_CHARS ? source.slice(0, MAX_SCANNED_CHARS) : source;
  for (const whole of text.split('\n')) {
    const raw = (whole.length > MAX_LINE_CHARS ? whole.slice(0, MAX_LINE_CHARS) : whole).replace(/\r$/, '');
    if (!raw.trim() || /^\s*(\/\/|#|\*|\/\*)/.test(raw)) continue;
    if (language !== 'java' && /^\s/.test(raw)) continue;
    if (!patterns.some((p) => p.test(raw))) continue;
    out.push(shorten(raw, language));
    if (out.length >= MAX_DECLARATIONS) break;
  }
  return out;
}

/** The signature without its body: one scan, no backtracking. */
export function shorten(line: string, language: Language): string {
  let text = line.trim();
  if (!/^(export\s*\{|module\.exports)/.test(text)) {
    const cut = language === 'py' ? pythonBodyStart(text) : braceBodyStart(text);
    if (cut > 0) text = text.slice(0, cut);
  }
  return clip(text.replace(/\s+/g, ' ').trim());
}

const isSpace = (c: string): boolean => c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v';

/**
 * Where a one-line body starts: the last `{` when after it comes at most one `}` and then only
 * spaces and an optional `;` (`f() {`, `f() { return 1; }`, `T x = {};`); -1 otherwise.
 */
export function braceBodyStart(text: string): number {
  const open = text.lastIndexOf('{');
  if (open < 0) return -1;
  const close = text.indexOf('}', open);
  if (close >= 0) {
    let i = close + 1;
    while (i < text.length && isSpace(text[i])) i++;
    if (text[i] === ';') i++;
    while (i < text.length && isSpace(text[i])) i++;
    if (i < text.length) return -1;
  }
  let start = open;
  while (start > 0 && isSpace(text[start - 1])) start--;
  return start;
}

/** Where a Python header's `:` is: the first one followed only by spaces and maybe a comment; -1 if none. */
export function pythonBodyStart(text: string): number {
  // Scanning from the end finds the last such colon; the first is wanted, so track it going back.
  let found = -1;
  let tailIsBlank = true;
  for (let i = text.length - 1; i >= 0; i--) {
    const c = text[i];
    if (c === ':' && tailIsBlank) found = i;
    if (c === '#') tailIsBlank = true;
    else if (!isSpace(c)) tailIsBlank = false;
  }
  return found;
}

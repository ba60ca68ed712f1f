import { braceBodyStart, extractDeclarations, MAX_LINE_CHARS, pythonBodyStart, shorten } from './declarations';
import { DeclarationReader } from './declaration-reader';

/** The body-start regexes that shorten() used before, kept here to check the scans against. */
const OLD_BRACE = /\s*\{[^{}]*\}?\s*;?\s*$/;
const OLD_PYTHON = /:\s*(#.*)?$/;

describe('shorten: the body cut is a linear scan that agrees with the old patterns', () => {
  it.each([
    'export function f(a) {',
    'export function f(a)   {  return a; }  ; ',
    'const x = { a: 1 };',
    'function f() { g({}) }',
    'class A extends B<{ x: 1 }> {',
    'fn main() {}',
    'impl X { fn a() { } }',
    'no braces here',
    'a } b {',
    '{',
    'x = {} + 1',
    'type T = { a: 1 } | { b: 2 };',
  ])('%s', (line) => {
    expect(braceBodyStart(line)).toBe(line.search(OLD_BRACE));
  });

  it.each([
    'def f(a):',
    'def f(a):  # note',
    'class A(B):  ',
    'def f(a: int) -> dict[str, int]:',
    'x = {1: 2}',
    'def f(a, b=":"):',
    'lambda: x',
    'a: b # c: d',
  ])('%s (python)', (line) => {
    expect(pythonBodyStart(line)).toBe(line.search(OLD_PYTHON));
  });

  it('stays fast on lines built to make the old pattern backtrack (100,000 spaces)', () => {
    const spaces = ' '.repeat(100_000);
    // The old pattern took minutes on such a line; the scans are linear (timing is the e2e's job).
    expect(shorten(`export function f() {${spaces}x`, 'ts')).toBe('export function f()');
    expect(shorten(`export function f() {${spaces}}${spaces}x`, 'ts')).toBe('export function f() { } x');
    expect(shorten(`def f():${spaces}x`, 'py')).toBe('def f(): x');
    expect(braceBodyStart(`{${spaces}}${spaces};${spaces}`)).toBe(0);
  });
});

describe('extractDeclarations on pathological files', () => {
  it('looks at most MAX_LINE_CHARS of a line', () => {
    const long = `export function f(${'a,'.repeat(100_000)}) {`;
    const [declaration] = extractDeclarations('a.ts', long);
    expect(declaration.startsWith('export function f(a,a,')).toBe(true);
    expect(declaration.length).toBeLessThanOrEqual(110);
    expect(MAX_LINE_CHARS).toBeLessThan(1000);
  });

  it('reads files of long lines of spaces, deep nesting and many lines, and still finds declarations', () => {
    const source = [
      ' '.repeat(100_000),
      `function ${' '.repeat(50_000)}{`,
      `${'{'.repeat(50_000)}${'}'.repeat(50_000)}`,
      'export function kept() {',
      ...Array.from({ length: 20_000 }, (_, i) => `  x${i} = ${'('.repeat(20)}${')'.repeat(20)};`),
    ].join('\n');
    expect(extractDeclarations('src/hostile.js', source)).toContain('export function kept()');
    const python = [`def f(${' '.repeat(100_000)}):`, `class A(${':'.repeat(100_000)}`].join('\n');
    expect(extractDeclarations('a.py', python)).toHaveLength(2);
  });

  it('handles CRLF lines', () => {
    expect(extractDeclarations('a.go', 'package a\r\nfunc main() {\r\n}\r\n')).toEqual(['func main()']);
  });
});

describe('DeclarationReader (worker thread)', () => {
  const reader = new DeclarationReader();
  afterAll(() => reader.onModuleDestroy());

  it('reads declarations in a worker, one file at a time, answers in order', async () => {
    const results = await Promise.all([reader.read('a.py', 'def a():\n  pass\n'), reader.read('b.go', 'func b() {\n}\n'), reader.read('c.md', '# nothing')]);
    expect(results).toEqual([['def a()'], ['func b()'], []]);
  });

  it('gives up on a file over its budget (terminating the worker) and carries on with a fresh one', async () => {
    await reader.read('warm.py', 'def warm():'); // the worker has started: the budget times the file alone
    reader.budgetMs = 0;
    const huge = Array.from({ length: 200_000 }, (_, i) => `export function f${i}() {}`).join('\n');
    await expect(reader.read('huge.ts', huge)).resolves.toBeUndefined();
    reader.budgetMs = 10_000;
    await expect(reader.read('after.rs', 'pub fn after() {}')).resolves.toEqual(['pub fn after()']);
  });
});

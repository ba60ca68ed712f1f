import { treeSitterDeclarations } from './tree-sitter-declarations';
import { DeclarationReader } from './declaration-reader';

const decls = (path: string, lines: string[]) => treeSitterDeclarations(path, lines.join('\n'));

describe('declarations from syntax trees (tree-sitter), per language', () => {
  it('TypeScript: exports, classes with their methods, interfaces, types, enums, arrow functions', async () => {
    expect(
      await decls('src/a.ts', [
        "import { x } from './x';",
        'export function average(values: number[]): number {',
        '  const inner = () => 1;',
        '  return 0;',
        '}',
        'export default class Server extends Base {',
        '  private port = 1;',
        '  async start(port: number): Promise<void> {}',
        '}',
        'export interface Options { a: string }',
        'type Id = string;',
        'enum Mode { A, B }',
        'const helper = async (a: number, b: number) => {',
        '  return a + b;',
        '};',
        'let notAFunction = 3;',
      ]),
    ).toEqual([
      'export function average(values: number[]): number',
      'export default class Server extends Base',
      '  async start(port: number): Promise<void>',
      'export interface Options',
      'type Id = string;',
      'enum Mode',
      'const helper = async (a: number, b: number) =>',
    ]);
  });

  it('JavaScript (and JSX) functions, classes and methods', async () => {
    expect(
      await decls('src/math.js', [
        'function average(values) {',
        '  return 0;',
        '}',
        'class Stack {',
        '  push(x) { this.items.push(x); }',
        '}',
        'module.exports = { average };',
      ]),
    ).toEqual(['function average(values)', 'class Stack', '  push(x)']);
    expect(await decls('src/View.jsx', ['export function View({ value }) {', '  return <div>{value}</div>;', '}'])).toEqual([
      'export function View({ value })',
    ]);
  });

  it('Python: defs, classes and their methods, decorated too', async () => {
    expect(
      await decls('pkg/parser.py', [
        'import os',
        '@dataclass',
        'class Parser(Base):',
        '    def method(self, a):',
        '        pass',
        '    @property',
        '    def name(self):',
        '        return 1',
        'async def fetch(url: str) -> bytes:',
        '    pass',
        'x = 1',
      ]),
    ).toEqual(['class Parser(Base)', '  def method(self, a)', '  def name(self)', 'async def fetch(url: str) -> bytes']);
  });

  it('Go: funcs, methods and types', async () => {
    expect(
      await decls('cmd/main.go', [
        'package main',
        'type Server struct {',
        '\tport int',
        '}',
        'func (s *Server) Start() error {',
        '\treturn nil',
        '}',
        'func main() {',
        '}',
        'var x = 1',
      ]),
    ).toEqual(['type Server struct', 'func (s *Server) Start() error', 'func main()']);
  });

  it('Rust: items, impl blocks and their functions', async () => {
    expect(
      await decls('src/lib.rs', [
        'use std::io;',
        'pub struct Config {',
        '    a: u8,',
        '}',
        'impl Config {',
        '    pub fn load(path: &str) -> Result<Config> {',
        '        todo!()',
        '    }',
        '}',
        'enum Mode { A, B }',
        'pub(crate) async fn run() {}',
      ]),
    ).toEqual(['pub struct Config', 'impl Config', '  pub fn load(path: &str) -> Result<Config>', 'enum Mode', 'pub(crate) async fn run()']);
  });

  it('Java: classes, constructors and methods', async () => {
    expect(
      await decls('src/main/java/a/Cache.java', [
        'package a;',
        'public final class Cache<K, V> {',
        '    private int size;',
        '    public Cache(int size) { this.size = size; }',
        '    public V get(K key) {',
        '        return null;',
        '    }',
        '}',
        'interface Loader {}',
      ]),
    ).toEqual(['public final class Cache<K, V>', '  public Cache(int size)', '  public V get(K key)', 'interface Loader']);
  });

  it('C and C++: functions, prototypes, structs, classes and their methods', async () => {
    expect(await decls('src/calc.c', ['#include <stdio.h>', 'struct point { int x; };', 'int sum(int a, int b) {', '  return a + b;', '}'])).toEqual([
      'struct point',
      'int sum(int a, int b)',
    ]);
    expect(
      await decls('include/calc.hpp', [
        'int sum(int a, int b);',
        'class Calc {',
        ' public:',
        '  int twice(int a) { return 2 * a; }',
        '};',
        'namespace util {',
        '}',
      ]),
    ).toEqual(['int sum(int a, int b);', 'class Calc', '  int twice(int a)', 'namespace util']);
  });

  it('Ruby: classes, modules and methods', async () => {
    expect(await decls('lib/calc.rb', ['module Calc', 'end', 'class Adder < Base', '  def add(a, b)', '    a + b', '  end', 'end', 'def helper; end'])).toEqual(
      ['module Calc', 'class Adder < Base', '  def add(a, b)', 'def helper; end'],
    );
  });

  it('Kotlin: classes and functions', async () => {
    expect(await decls('src/App.kt', ['class App(val name: String) {', '    fun run(): Int {', '        return 1', '    }', '}', 'fun main() {}'])).toEqual([
      'class App(val name: String)',
      '  fun run(): Int',
      'fun main()',
    ]);
  });

  it('other languages: none (listed by path only)', async () => {
    expect(await decls('README.md', ['# x'])).toBeUndefined();
    expect(await decls('types/index.d.ts', ['export function x(): void;'])).toBeUndefined();
  });

  it('pathological input: very long lines, deep nesting, a huge file — bounded signatures, no recursion', async () => {
    const spaces = ' '.repeat(100_000);
    const [long] = (await decls('a.js', [`function f(${spaces}a) {${spaces}}`]))!;
    expect(long).toBe('function f('); // no more than 400 characters of a signature are read
    const deep = await decls('b.js', [...Array.from({ length: 3_000 }, () => 'if (a) {'), ...Array.from({ length: 3_000 }, () => '}'), 'function after() {}']);
    expect(deep).toContain('function after()');
    // Unrecoverable: the tree has nothing, so the worker falls back to the line patterns.
    expect(await decls('c.py', [`def f(${'('.repeat(30_000)}`, 'def g():', '    pass'])).toBeUndefined();
    const huge = await decls(
      'd.ts',
      Array.from({ length: 3_000 }, (_, i) => `export function f${i}(a: number): number { return a; }`),
    );
    expect(huge).toHaveLength(40);
  });
});

describe('the worker reads declarations by syntax tree', () => {
  const reader = new DeclarationReader();
  afterAll(() => reader.onModuleDestroy());

  it('a Ruby file (no patterns for it) gets its declarations from the worker', async () => {
    await expect(reader.read('lib/a.rb', 'class A\n  def b\n  end\nend\n')).resolves.toEqual(['class A', '  def b']);
  });
});

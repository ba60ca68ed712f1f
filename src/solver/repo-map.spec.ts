import { buildRepoMap, estimateTokens, keywordsOf, mappableFiles, relevance, skipReason, type TreeEntry } from './repo-map';
import { extractDeclarations } from './declarations';

const blob = (path: string, size = 100): TreeEntry => ({ path, type: 'blob', size, sha: `sha-${path}` });

describe('skipReason / mappableFiles', () => {
  it.each([
    ['node_modules/left-pad/index.js', 'vendored'],
    ['packages/app/node_modules/x/y.js', 'vendored'],
    ['vendor/github.com/pkg/errors/errors.go', 'vendored'],
    ['third_party/zlib/zlib.h', 'vendored'],
    ['dist/app.js', 'vendored'],
    ['target/debug/build.rs', 'vendored'],
    ['docs/logo.png', 'binary'],
    ['assets/font.woff2', 'binary'],
    ['lib/native.so', 'binary'],
    ['public/app.min.js', 'generated'],
    ['public/app.js.map', 'generated'],
    ['package-lock.json', 'generated'],
    ['yarn.lock', 'generated'],
    ['go.sum', 'generated'],
    ['api/service.pb.go', 'generated'],
    ['proto/service_pb2.py', 'generated'],
  ])('%s is skipped as %s', (path, reason) => {
    expect(skipReason({ path })).toBe(reason);
  });

  it.each(['src/index.ts', 'README.md', 'cmd/main.go', 'Cargo.toml', 'lib/builder.py', 'src/distance.rs'])('%s is kept', (path) => {
    expect(skipReason({ path, size: 2000 })).toBeUndefined();
  });

  it('skips very large files and keeps only blobs', () => {
    const tree: TreeEntry[] = [
      { path: 'src', type: 'tree', sha: 't' },
      blob('src/a.ts'),
      blob('data/dump.json', 5 * 1024 * 1024),
      { path: 'sub', type: 'commit', sha: 'c' },
    ];
    expect(mappableFiles(tree).map((e) => e.path)).toEqual(['src/a.ts']);
  });
});

describe('extractDeclarations', () => {
  it('reads top-level functions, classes and exports of TypeScript/JavaScript, without bodies', () => {
    const source = [
      "import { x } from './x';",
      'export function average(values: number[]): number {',
      '  const inner = () => 1;',
      '  return 0;',
      '}',
      'export default class Server extends Base {',
      '  method() {}',
      '}',
      'export const LIMIT = 10;',
      'export interface Options {',
      'export type Id = string;',
      'const helper = async (a, b) => {',
      'function local(a) { return a; }',
      'module.exports = { average };',
      '// function commented() {}',
      'let notAFunction = 3;',
    ].join('\n');
    expect(extractDeclarations('src/math.ts', source)).toEqual([
      'export function average(values: number[]): number',
      'export default class Server extends Base',
      'export const LIMIT = 10;',
      'export interface Options',
      'export type Id = string;',
      'const helper = async (a, b) =>',
      'function local(a)',
      'module.exports = { average };',
    ]);
  });

  it('reads Python defs and classes at the top level only', () => {
    const source = [
      'import os',
      'class Parser(Base):',
      '    def method(self):',
      '        pass',
      'async def fetch(url: str) -> bytes:',
      'def main():  # entry',
      'x = 1',
    ].join('\n');
    expect(extractDeclarations('pkg/parser.py', source)).toEqual(['class Parser(Base)', 'async def fetch(url: str) -> bytes', 'def main()']);
  });

  it('reads Go funcs (methods too) and types', () => {
    const source = ['package main', 'type Server struct {', '\tport int', '}', 'func (s *Server) Start() error {', 'func main() {', 'var x = 1'].join('\n');
    expect(extractDeclarations('cmd/main.go', source)).toEqual(['type Server struct', 'func (s *Server) Start() error', 'func main()']);
  });

  it('reads Rust items', () => {
    const source = [
      'use std::io;',
      'pub struct Config {',
      'pub(crate) async fn load(path: &str) -> Result<Config> {',
      'impl Config {',
      '    fn inner() {}',
      'enum Mode { A, B }',
      'macro_rules! m {',
    ].join('\n');
    expect(extractDeclarations('src/lib.rs', source)).toEqual([
      'pub struct Config',
      'pub(crate) async fn load(path: &str) -> Result<Config>',
      'impl Config',
      'enum Mode',
      'macro_rules! m',
    ]);
  });

  it('reads Java classes and their public methods', () => {
    const source = [
      'package a.b;',
      'public final class Cache<K, V> {',
      '    private int size;',
      '    public V get(K key) {',
      '    protected static void evict(int n) {',
      '        int local = 0;',
      '}',
      'interface Loader {',
    ].join('\n');
    expect(extractDeclarations('src/main/java/a/b/Cache.java', source)).toEqual([
      'public final class Cache<K, V>',
      'public V get(K key)',
      'protected static void evict(int n)',
      'interface Loader',
    ]);
  });

  it('gives nothing for files that are not source', () => {
    expect(extractDeclarations('README.md', '# function x() {}')).toEqual([]);
    expect(extractDeclarations('types/index.d.ts', 'export function x(): void;')).toEqual([]);
  });
});

describe('relevance', () => {
  it('ranks files the issue names, and path words it uses, above others', () => {
    const issue = 'average() returns NaN in src/math.js when called from the stats module';
    const keywords = keywordsOf(issue);
    const score = (p: string) => relevance(blob(p), keywords, issue);
    expect(score('src/math.js')).toBeGreaterThan(score('src/stats.js'));
    expect(score('src/stats.js')).toBeGreaterThan(score('src/server.js'));
    expect(score('src/server.js')).toBeGreaterThan(score('docs/guide.md'));
  });
});

describe('buildRepoMap', () => {
  const tree: TreeEntry[] = [
    { path: 'src', type: 'tree', sha: 't1' },
    blob('src/math.js', 210),
    blob('src/index.js', 90),
    blob('README.md', 1500),
    blob('node_modules/left-pad/index.js'),
    blob('logo.png', 3000),
    blob('dist/bundle.min.js', 9000),
  ];
  const declarations = new Map([
    ['src/math.js', ['function average(values)', 'module.exports = { average };']],
    ['src/index.js', ['function main()']],
  ]);
  const score = (e: TreeEntry) => (e.path === 'src/math.js' ? 10 : e.path === 'src/index.js' ? 5 : 0);

  it('lists paths with sizes and declarations in path order, and counts what it skipped', () => {
    const map = buildRepoMap({ tree, truncated: false, declarations, score, budgetTokens: 1000 });
    expect(map.text).toBe(
      [
        'README.md (1.5 KB)',
        'src/index.js (90 B)',
        '  function main()',
        'src/math.js (210 B)',
        '  function average(values)',
        '  module.exports = { average };',
      ].join('\n'),
    );
    expect(map).toMatchObject({ listed: 3, omitted: 0, skipped: 3 });
    expect(map.tokens).toBe(estimateTokens(map.text));
  });

  it('says when GitHub truncated the tree', () => {
    const map = buildRepoMap({ tree, truncated: true, declarations, score, budgetTokens: 1000 });
    expect(map.text.split('\n')[0]).toMatch(/truncated/);
  });

  it('over budget drops declarations of the least relevant files first, then the least relevant paths', () => {
    const full = buildRepoMap({ tree, truncated: false, declarations, score, budgetTokens: 1000 });
    const noIndexDecls = buildRepoMap({ tree, truncated: false, declarations, score, budgetTokens: full.tokens - 3 });
    expect(noIndexDecls.text).not.toContain('function main()');
    expect(noIndexDecls.text).toContain('function average(values)');
    expect(noIndexDecls.tokens).toBeLessThanOrEqual(full.tokens - 3);

    const tiny = buildRepoMap({ tree, truncated: false, declarations, score, budgetTokens: 12 });
    expect(tiny.tokens).toBeLessThanOrEqual(12);
    expect(tiny.text).toContain('src/math.js');
    expect(tiny.text).not.toContain('README.md');
    expect(tiny.omitted).toBeGreaterThan(0);
    expect(tiny.text).toMatch(/more file\(s\) not shown/);
  });

  it('keeps a large repository within the budget', () => {
    const big: TreeEntry[] = Array.from({ length: 5000 }, (_, i) => blob(`pkg${i % 50}/module_${i}.py`, 1000 + i));
    const decls = new Map(big.slice(0, 200).map((e) => [e.path, ['def run()', 'class Thing']]));
    const map = buildRepoMap({ tree: big, truncated: false, declarations: decls, score: (e) => -e.path.length, budgetTokens: 2000 });
    expect(map.tokens).toBeLessThanOrEqual(2000);
    expect(map.listed + map.omitted).toBe(5000);
    expect(map.listed).toBeGreaterThan(100);
  });
});

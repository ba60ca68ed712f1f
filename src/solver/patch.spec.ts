import { applyPatch, parsePatch } from 'diff';
import { CALC_FIX_DIFF, CALC_INDEX as INDEX, CALC_MATH as MATH, CALC_MATH_FIXED as FIXED, gitApply, gitAvailable } from '../../test/fakes/github.fake';
import { applyDiff, explanationOf, extractDiff, parseDiffLenient, pathsOfDiff } from './patch';

const sources = () =>
  new Map([
    ['src/math.js', MATH],
    ['src/index.js', INDEX],
  ]);

const GOOD = CALC_FIX_DIFF;

/** Every re-made patch must apply without fuzz with jsdiff's strict parser, and give `after`. */
function expectClean(patch: string, before: Map<string, string>, after: Map<string, string | null>) {
  const parsed = parsePatch(patch);
  expect(parsed.length).toBe(after.size);
  for (const file of parsed) {
    const name = (file.newFileName === '/dev/null' ? file.oldFileName : file.newFileName)!.replace(/^[ab]\//, '');
    const result = applyPatch(before.get(name) ?? '', file, { fuzzFactor: 0 });
    const expected = after.get(name);
    expect(result).toBe(expected === null ? '' : expected);
  }
}

describe('extractDiff / explanationOf', () => {
  const answer = `The loop reads one element past the end, so the sum is NaN.\n\n\`\`\`diff\n${GOOD}\`\`\`\n\nThat is all.`;

  it('takes the ```diff block and leaves the explanation', () => {
    expect(extractDiff(answer)).toBe(GOOD);
    expect(explanationOf(answer)).toBe('The loop reads one element past the end, so the sum is NaN.\n\nThat is all.');
  });

  it('joins several diff blocks, accepts ```patch, and a diff-looking block without a language', () => {
    const two = `a\n\`\`\`diff\n${GOOD}\`\`\`\nb\n\`\`\`patch\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n\`\`\``;
    expect(extractDiff(two)).toBe(`${GOOD}--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n`);
    expect(extractDiff(`\`\`\`\n${GOOD}\`\`\``)).toBe(GOOD);
  });

  it('finds a bare diff, and nothing in an answer without one', () => {
    expect(extractDiff(`Here:\n${GOOD}`)).toBe(GOOD);
    expect(extractDiff('I cannot fix this.\n```js\nconsole.log(1)\n```')).toBeUndefined();
  });

  it('keeps the unclosed block of a stopped answer', () => {
    const cut = `Because.\n\`\`\`diff\n--- a/src/math.js\n+++ b/src/math.js\n@@ -4,7 +4,7 @@\n function average(values) {`;
    expect(extractDiff(cut)).toBe('--- a/src/math.js\n+++ b/src/math.js\n@@ -4,7 +4,7 @@\n function average(values) {\n');
  });
});

describe('parseDiffLenient', () => {
  it('reads git headers, new and deleted files, and hunks without line numbers', () => {
    const diff = [
      'diff --git a/src/a.js b/src/a.js',
      'index 83db48f..bf269f4 100644',
      '--- a/src/a.js',
      '+++ b/src/a.js',
      '@@ -1,2 +1,2 @@',
      ' x',
      '-y',
      '+z',
      'diff --git a/new.txt b/new.txt',
      'new file mode 100644',
      '--- /dev/null',
      '+++ b/new.txt',
      '@@ -0,0 +1 @@',
      '+hello',
      '--- a/old.txt',
      '+++ /dev/null',
      '@@ @@',
      '-bye',
    ].join('\n');
    const files = parseDiffLenient(diff);
    expect(files.map((f) => [f.oldPath, f.newPath, f.hunks.length])).toEqual([
      ['a/src/a.js', 'b/src/a.js', 1],
      [null, 'b/new.txt', 1],
      ['a/old.txt', null, 1],
    ]);
    expect(files[0].hunks[0]).toMatchObject({ oldStart: 1, lines: [' x', '-y', '+z'] });
    expect(files[2].hunks[0].oldStart).toBeUndefined();
    expect(pathsOfDiff(diff, () => false)).toEqual(['src/a.js', 'new.txt', 'old.txt']);
  });

  it('treats a blank line in a hunk as blank context and an unprefixed line as context', () => {
    const [file] = parseDiffLenient('--- a/f\n+++ b/f\n@@ -1,3 +1,3 @@\nfoo\n\n-bar\n+baz\n\n');
    expect(file.hunks[0].lines).toEqual([' foo', ' ', '-bar', '+baz']);
  });
});

describe('applyDiff', () => {
  it('good: applies exactly and re-makes a clean patch (git accepts it too)', () => {
    const result = applyDiff(GOOD, sources());
    expect(result.reasons).toEqual([]);
    expect(result.applies).toBe(true);
    expect(result.files).toEqual([expect.objectContaining({ path: 'src/math.js', ok: true, fuzzy: false, after: FIXED })]);
    expect(result.patch.startsWith('diff --git a/src/math.js b/src/math.js\n--- a/src/math.js\n+++ b/src/math.js\n@@ -3,7 +3,7 @@')).toBe(true);
    expectClean(result.patch, sources(), new Map([['src/math.js', FIXED]]));
    if (gitAvailable) expect(gitApply(result.patch, { 'src/math.js': MATH }, 'src/math.js')).toBe(FIXED);
  });

  it('fuzzy: wrong line numbers and counts, blank context without its space, trailing spaces — placed, then re-made clean', () => {
    const sloppy =
      GOOD.replace(
        '--- a/src/math.js\n+++ b/src/math.js\n@@ -4,7 +4,7 @@\n function average(values) {',
        '--- src/math.js\n+++ src/math.js\n@@ -40,2 +40,9 @@\n function average(values) {   ',
      ) + ' }\n\n function median(values) {\n';
    expect(() => parsePatch(sloppy)).toThrow(); // the strict parser refuses it
    const result = applyDiff(sloppy, sources());
    expect(result.applies).toBe(true);
    expect(result.files[0]).toMatchObject({ path: 'src/math.js', fuzzy: true, after: FIXED });
    expect(result.patch).not.toBe(sloppy);
    expectClean(result.patch, sources(), new Map([['src/math.js', FIXED]]));
    if (gitAvailable) expect(gitApply(result.patch, { 'src/math.js': MATH }, 'src/math.js')).toBe(FIXED);
  });

  it('fuzzy: a hunk header without numbers is placed by its content', () => {
    const result = applyDiff(
      '--- a/src/math.js\n+++ b/src/math.js\n@@ @@\n function median(values) {\n-  const sorted = [...values].sort();\n+  const sorted = [...values].sort((a, b) => a - b);\n',
      sources(),
    );
    expect(result.applies).toBe(true);
    expect(result.files[0].after).toContain('sort((a, b) => a - b)');
    expectClean(result.patch, sources(), new Map([['src/math.js', result.files[0].after!]]));
  });

  it('applies several hunks given out of order and several files', () => {
    const diff = [
      '--- a/src/math.js',
      '+++ b/src/math.js',
      '@@ -13,2 +13,2 @@',
      '-  const sorted = [...values].sort();',
      '+  const sorted = [...values].sort((a, b) => a - b);',
      '   return sorted[Math.floor(sorted.length / 2)];',
      '@@ -6,1 +6,1 @@',
      '-  for (let i = 0; i <= values.length; i++) {',
      '+  for (let i = 0; i < values.length; i++) {',
      '--- a/src/index.js',
      '+++ b/src/index.js',
      '@@ -3 +3 @@',
      '-console.log(average([1, 2, 3]));',
      '+console.log(average([1, 2, 3, 4]));',
    ].join('\n');
    const result = applyDiff(diff, sources());
    expect(result.reasons).toEqual([]);
    const math = FIXED.replace('[...values].sort()', '[...values].sort((a, b) => a - b)');
    const index = INDEX.replace('[1, 2, 3]', '[1, 2, 3, 4]');
    expect(result.files.map((f) => [f.path, f.after])).toEqual([
      ['src/math.js', math],
      ['src/index.js', index],
    ]);
    expectClean(
      result.patch,
      sources(),
      new Map([
        ['src/math.js', math],
        ['src/index.js', index],
      ]),
    );
  });

  it('creates and deletes files', () => {
    const diff =
      "--- /dev/null\n+++ b/src/mean.js\n@@ -0,0 +1,2 @@\n+// new\n+module.exports = 1;\n--- a/src/index.js\n+++ /dev/null\n@@ -1,3 +0,0 @@\n-const { average } = require('./math');\n-\n-console.log(average([1, 2, 3]));\n";
    const result = applyDiff(diff, sources());
    expect(result.reasons).toEqual([]);
    expect(result.files).toEqual([
      expect.objectContaining({ path: 'src/mean.js', created: true, after: '// new\nmodule.exports = 1;\n' }),
      expect.objectContaining({ path: 'src/index.js', deleted: true }),
    ]);
    expect(result.patch).toContain('new file mode 100644\n--- /dev/null\n+++ b/src/mean.js');
    expect(result.patch).toContain('deleted file mode 100644\n--- a/src/index.js\n+++ /dev/null');
    expectClean(
      result.patch,
      sources(),
      new Map<string, string | null>([
        ['src/mean.js', '// new\nmodule.exports = 1;\n'],
        ['src/index.js', null],
      ]),
    );
  });

  it("fuzzy: a paraphrased context line and spacing inside lines — placed (the file's lines kept), then re-made clean", () => {
    const drifted = GOOD.replace('   let sum = 0;', '   let total = 0;').replace(' function average(values) {', ' function average(values){');
    const result = applyDiff(drifted, sources());
    expect(result.reasons).toEqual([]);
    expect(result.files[0]).toMatchObject({ fuzzy: true, after: FIXED });
  });

  it('broken: a removed line that is not in the file does not apply, and says which line', () => {
    const broken = GOOD.replace('-  for (let i = 0; i <= values.length; i++) {', '-  for (let i = 0; i <= values.size; i++) {');
    const result = applyDiff(broken, sources());
    expect(result.applies).toBe(false);
    expect(result.patch).toBe('');
    expect(result.reasons).toEqual(['src/math.js: hunk 1 (@@ -4,7 +4,7 @@): the line to remove `for (let i = 0; i <= values.size; i++) {` is not in the file']);
  });

  it('broken: lines that exist but not together: says where it came closest', () => {
    const diff =
      '--- a/src/math.js\n+++ b/src/math.js\n@@ -1,3 +1,3 @@\n function average(values) {\n-  return sorted[Math.floor(sorted.length / 2)];\n+  return 0;\n';
    const result = applyDiff(diff, sources());
    expect(result.applies).toBe(false);
    expect(result.reasons[0]).toMatch(
      /^src\/math.js: hunk 1 .*: at line 5 the file has `let sum = 0;` where the diff has `return sorted\[Math.floor\(sorted.length \/ 2\)\];`$/,
    );
  });

  it('broken: a file that does not exist, a file created twice, no diff, a diff that changes nothing', () => {
    expect(applyDiff(GOOD.replace(/src\/math.js/g, 'src/nope.js'), sources()).reasons).toEqual(['`src/nope.js` does not exist in the repository']);
    expect(applyDiff('--- /dev/null\n+++ b/src/index.js\n@@ -0,0 +1 @@\n+x\n', sources()).reasons[0]).toMatch(/already exists/);
    expect(applyDiff(undefined, sources())).toEqual({ applies: false, files: [], reasons: ['the answer has no unified diff in a ```diff block'], patch: '' });
    expect(applyDiff('--- a/src/index.js\n+++ b/src/index.js\n@@ -1 +1 @@\n-\n+\n', sources()).applies).toBe(false);
  });

  it('does not apply a hunk whose removed line is missing, even with fuzz', () => {
    const diff =
      '--- a/src/math.js\n+++ b/src/math.js\n@@ -5,3 +5,3 @@\n   let sum = 0;\n-  for (let j = 0; j <= values.length; j++) {\n+  for (let j = 0; j < values.length; j++) {\n     sum += values[i];\n';
    expect(applyDiff(diff, sources()).applies).toBe(false);
  });
});

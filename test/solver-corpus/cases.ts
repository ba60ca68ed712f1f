/**
 * Model-written diffs as they really drift, each with its source files and the right outcome: the
 * text every file must have after applying it, or `refuse` when no safe placement exists. Each case
 * says where its drift pattern comes from. The cases are rewritten (not copied) after public
 * edit-format test suites of coding assistants and diff appliers, which record what models send:
 *
 * - AIDER: Aider's unified-diff tests and benchmark notes — https://github.com/Aider-AI/aider/blob/main/tests/basic/test_udiff.py,
 *   https://aider.chat/docs/unified-diffs.html (GPT-4 Turbo diffs: `@@ ... @@` headers, no line numbers, `...` elisions)
 * - AMD: apply-multi-diff fixtures — https://github.com/nocapro/apply-multi-diff/tree/main/test/fixtures/standard-diff
 *   (drifted context, user edits inside a hunk, overlapping hunks, failures)
 * - ROO: Roo Code's unified-diff strategy tests — https://github.com/RooCodeInc/Roo-Code/tree/main/src/core/diff/strategies/__tests__
 *   (indentation drift, similar code in several places, hunk splitting)
 * - ISSUE: this project's issue 18 (the `function shout(s){` hunk reported as not applying)
 * - SWE: SWE-bench agent trajectories — https://github.com/SWE-bench/experiments (wrong line numbers, whitespace-stripped context,
 *   whole functions rewritten under one header)
 */
export interface CorpusCase {
  name: string;
  source: string;
  files: Record<string, string>;
  diff: string;
  /** The files after the change, or `refuse`. */
  expect: Record<string, string | null> | 'refuse';
}

const SHOUT = ['const prefix = "> ";', '', 'function whisper(s) {', '  return s.toLowerCase();', '}', '', 'function shout(s) {', '  return s.toUpperCase();', '}', '', 'module.exports = { whisper, shout };', ''].join('\n');
const SHOUT_FIXED = SHOUT.replace('  return s.toUpperCase();', '  return prefix + s.toUpperCase() + "!";');

const PY = [
  'import os',
  '',
  '',
  'class Config:',
  '    def __init__(self, path):',
  '        self.path = path',
  '        self.values = {}',
  '',
  '    def load(self):',
  '        with open(self.path) as f:',
  '            for line in f:',
  '                key, value = line.split("=")',
  '                self.values[key] = value',
  '',
  '    def get(self, key):',
  '        return self.values[key]',
  '',
].join('\n');

const GO = ['package calc', '', 'func Sum(xs []int) int {', '\ttotal := 0', '\tfor _, x := range xs {', '\t\ttotal += x', '\t}', '\treturn total', '}', '', 'func Max(xs []int) int {', '\tm := xs[0]', '\tfor _, x := range xs {', '\t\tif x > m {', '\t\t\tm = x', '\t\t}', '\t}', '\treturn m', '}', ''].join('\n');

const TWIN = ['function a() {', '  let n = 0;', '  n += 1;', '  return n;', '}', '', 'function b() {', '  let n = 0;', '  n += 1;', '  return n;', '}', ''].join('\n');

const ARGS = [
  'def parse(argv):',
  '    parser = argparse.ArgumentParser()',
  '    group = parser.add_argument_group("other")',
  '    group.add_argument(',
  '        "--version",',
  '        action="version",',
  '        help="Show the version and exit",',
  '    )',
  '    group.add_argument(',
  '        "--apply",',
  '        metavar="FILE",',
  '    )',
  '    return parser.parse_args(argv)',
  '',
].join('\n');

const COMPONENT = ['// added by a person', 'class View extends Component {', '  render() {', '    const { value } = this.props;', '    // and a note', '    return <div>{value}</div>;', '  }', '}', ''].join('\n');

const d = (path: string, ...body: string[]) => `--- a/${path}\n+++ b/${path}\n${body.join('\n')}\n`;
const replaceIn = (text: string, from: string, to: string) => {
  if (!text.includes(from)) throw new Error(`corpus: ${from} not in text`);
  return text.replace(from, to);
};

export const CASES: CorpusCase[] = [
  // ---- changes that are well placed and must apply ----
  {
    name: 'spacing inside a line, header at the wrong line (the issue\'s shout hunk)',
    source: 'ISSUE',
    files: { 'src/say.js': SHOUT },
    diff: d('src/say.js', '@@ -2,3 +2,3 @@', ' function shout(s){', '-  return s.toUpperCase();', '+  return prefix + s.toUpperCase() + "!";', ' }'),
    expect: { 'src/say.js': SHOUT_FIXED },
  },
  {
    name: 'exact diff with right numbers',
    source: 'AIDER',
    files: { 'src/say.js': SHOUT },
    diff: d('src/say.js', '@@ -7,3 +7,3 @@', ' function shout(s) {', '-  return s.toUpperCase();', '+  return prefix + s.toUpperCase() + "!";', ' }'),
    expect: { 'src/say.js': SHOUT_FIXED },
  },
  {
    name: 'Aider-style `@@ ... @@` header without numbers',
    source: 'AIDER',
    files: { 'src/say.js': SHOUT },
    diff: d('src/say.js', '@@ ... @@', ' function shout(s) {', '-  return s.toUpperCase();', '+  return prefix + s.toUpperCase() + "!";', ' }'),
    expect: { 'src/say.js': SHOUT_FIXED },
  },
  {
    name: 'bare `@@ @@` header',
    source: 'AIDER',
    files: { 'src/say.js': SHOUT },
    diff: d('src/say.js', '@@ @@', ' function shout(s) {', '-  return s.toUpperCase();', '+  return prefix + s.toUpperCase() + "!";'),
    expect: { 'src/say.js': SHOUT_FIXED },
  },
  {
    name: 'header 40 lines off and counts wrong',
    source: 'SWE',
    files: { 'src/say.js': SHOUT },
    diff: d('src/say.js', '@@ -47,9 +47,12 @@', ' function shout(s) {', '-  return s.toUpperCase();', '+  return prefix + s.toUpperCase() + "!";', ' }', ' '),
    expect: { 'src/say.js': SHOUT_FIXED },
  },
  {
    name: 'context indented with 2 spaces where the file has 4 (Python)',
    source: 'ROO',
    files: { 'pkg/config.py': PY },
    diff: d('pkg/config.py', '@@ -15,2 +15,2 @@', '  def get(self, key):', '-        return self.values[key]', '+        return self.values.get(key)'),
    expect: { 'pkg/config.py': replaceIn(PY, '        return self.values[key]', '        return self.values.get(key)') },
  },
  {
    name: 'tabs written as spaces in Go context',
    source: 'SWE',
    files: { 'calc/calc.go': GO },
    diff: d('calc/calc.go', '@@ -11,3 +11,6 @@', ' func Max(xs []int) int {', '+    if len(xs) == 0 {', '+        return 0', '+    }', '     m := xs[0]'),
    expect: { 'calc/calc.go': replaceIn(GO, 'func Max(xs []int) int {\n', 'func Max(xs []int) int {\n    if len(xs) == 0 {\n        return 0\n    }\n') },
  },
  {
    name: 'trailing spaces in the file that the diff lacks',
    source: 'SWE',
    files: { 'a.js': 'function f() {   \n  return 1;  \n}\n' },
    diff: d('a.js', '@@ -1,3 +1,3 @@', ' function f() {', '-  return 1;', '+  return 2;', ' }'),
    expect: { 'a.js': 'function f() {   \n  return 2;\n}\n' },
  },
  {
    name: 'a blank context line the diff lacks',
    source: 'AMD',
    files: { 'pkg/config.py': PY },
    diff: d('pkg/config.py', '@@ -7,4 +7,5 @@', '         self.values = {}', '     def load(self):', '+        """Reads KEY=VALUE lines."""', '         with open(self.path) as f:'),
    expect: { 'pkg/config.py': replaceIn(PY, '    def load(self):\n', '    def load(self):\n        """Reads KEY=VALUE lines."""\n') },
  },
  {
    name: 'an extra blank context line the file lacks',
    source: 'AMD',
    files: { 'src/say.js': SHOUT },
    diff: d('src/say.js', '@@ -7,4 +7,4 @@', ' function shout(s) {', ' ', '-  return s.toUpperCase();', '+  return prefix + s.toUpperCase() + "!";', ' }'),
    expect: { 'src/say.js': SHOUT_FIXED },
  },
  {
    name: 'blank context lines without their leading space',
    source: 'AIDER',
    files: { 'src/say.js': SHOUT },
    diff: d('src/say.js', '@@ -5,6 +5,6 @@', ' }', '', ' function shout(s) {', '-  return s.toUpperCase();', '+  return prefix + s.toUpperCase() + "!";', ' }', ''),
    expect: { 'src/say.js': SHOUT_FIXED },
  },
  {
    name: 'one context line paraphrased (a reworded statement)',
    source: 'AMD',
    files: { 'pkg/config.py': PY },
    diff: d('pkg/config.py', '@@ -10,4 +10,4 @@', '         with open(self.path, "r") as f:', '             for line in f:', '-                key, value = line.split("=")', '+                key, value = line.strip().split("=", 1)', '                 self.values[key] = value'),
    expect: { 'pkg/config.py': replaceIn(PY, 'key, value = line.split("=")', 'key, value = line.strip().split("=", 1)') },
  },
  {
    name: 'the file gained a comment inside the hunk since the model read it',
    source: 'AMD',
    files: { 'src/view.jsx': COMPONENT },
    diff: d('src/view.jsx', '@@ -2,5 +2,5 @@', ' class View extends Component {', '   render() {', '     const { value } = this.props;', '-    return <div>{value}</div>;', '+    return <p>{value}</p>;', '   }', ' }'),
    expect: { 'src/view.jsx': replaceIn(COMPONENT, '<div>{value}</div>', '<p>{value}</p>') },
  },
  {
    name: 'a whole function rewritten under a one-line header',
    source: 'SWE',
    files: { 'calc/calc.go': GO },
    diff: d('calc/calc.go', '@@ -3 +3 @@', '-func Sum(xs []int) int {', '-\ttotal := 0', '-\tfor _, x := range xs {', '-\t\ttotal += x', '-\t}', '-\treturn total', '-}', '+func Sum(xs []int) (total int) {', '+\tfor _, x := range xs {', '+\t\ttotal += x', '+\t}', '+\treturn', '+}'),
    expect: { 'calc/calc.go': replaceIn(GO, 'func Sum(xs []int) int {\n\ttotal := 0\n\tfor _, x := range xs {\n\t\ttotal += x\n\t}\n\treturn total\n}', 'func Sum(xs []int) (total int) {\n\tfor _, x := range xs {\n\t\ttotal += x\n\t}\n\treturn\n}') },
  },
  {
    name: 'a whole function rewritten with its whitespace normalised by the model',
    source: 'SWE',
    files: { 'calc/calc.go': GO },
    diff: d('calc/calc.go', '@@ @@', '-func Max(xs []int) int {', '-    m := xs[0]', '-    for _, x := range xs {', '-        if x > m {', '-            m = x', '-        }', '-    }', '-    return m', '-}', '+func Max(xs []int) int {', '+\treturn slices.Max(xs)', '+}'),
    expect: { 'calc/calc.go': replaceIn(GO, 'func Max(xs []int) int {\n\tm := xs[0]\n\tfor _, x := range xs {\n\t\tif x > m {\n\t\t\tm = x\n\t\t}\n\t}\n\treturn m\n}', 'func Max(xs []int) int {\n\treturn slices.Max(xs)\n}') },
  },
  {
    name: '`...` standing for unchanged lines inside the context',
    source: 'AIDER',
    files: { 'pkg/config.py': PY },
    diff: d('pkg/config.py', '@@ ... @@', ' class Config:', ' ...', '     def get(self, key):', '-        return self.values[key]', '+        return self.values.get(key, default)'),
    expect: { 'pkg/config.py': replaceIn(PY, '        return self.values[key]', '        return self.values.get(key, default)') },
  },
  {
    name: '`# ... existing code ...` elision',
    source: 'ROO',
    files: { 'pkg/config.py': PY },
    diff: d('pkg/config.py', '@@ -4,13 +4,13 @@', ' class Config:', '     def __init__(self, path):', '     # ... existing code ...', '     def get(self, key):', '-        return self.values[key]', '+        return self.values.get(key)'),
    expect: { 'pkg/config.py': replaceIn(PY, '        return self.values[key]', '        return self.values.get(key)') },
  },
  {
    name: 'two hunks given bottom first',
    source: 'SWE',
    files: { 'calc/calc.go': GO },
    diff: d('calc/calc.go', '@@ -17,2 +17,2 @@', '-\treturn m', '+\treturn m // largest', ' }', '@@ -7,2 +7,2 @@', '-\treturn total', '+\treturn total // sum'),
    expect: { 'calc/calc.go': replaceIn(replaceIn(GO, '\treturn m\n', '\treturn m // largest\n'), '\treturn total\n', '\treturn total // sum\n') },
  },
  {
    name: 'two hunks, both with wrong numbers',
    source: 'SWE',
    files: { 'pkg/config.py': PY },
    diff: d('pkg/config.py', '@@ -30,2 +30,3 @@', ' import os', '+import sys', '@@ -90,2 +91,2 @@', '     def get(self, key):', '-        return self.values[key]', '+        return self.values.get(key)'),
    expect: { 'pkg/config.py': replaceIn(replaceIn(PY, 'import os\n', 'import os\nimport sys\n'), '        return self.values[key]', '        return self.values.get(key)') },
  },
  {
    name: 'two files in one answer, one header without a/ b/ prefixes',
    source: 'AIDER',
    files: { 'src/say.js': SHOUT, 'pkg/config.py': PY },
    diff: `--- src/say.js\n+++ src/say.js\n@@ ... @@\n-  return s.toLowerCase();\n+  return s.toLowerCase().trim();\n${d('pkg/config.py', '@@ -1 +1,2 @@', ' import os', '+import re')}`,
    expect: { 'src/say.js': replaceIn(SHOUT, 's.toLowerCase();', 's.toLowerCase().trim();'), 'pkg/config.py': replaceIn(PY, 'import os\n', 'import os\nimport re\n') },
  },
  {
    name: 'a new file',
    source: 'AIDER',
    files: {},
    diff: '--- /dev/null\n+++ b/src/util.js\n@@ -0,0 +1,3 @@\n+function id(x) {\n+  return x;\n+}\n',
    expect: { 'src/util.js': 'function id(x) {\n  return x;\n}\n' },
  },
  {
    name: 'a deleted file',
    source: 'SWE',
    files: { 'old.txt': 'a\nb\n' },
    diff: 'diff --git a/old.txt b/old.txt\ndeleted file mode 100644\n--- a/old.txt\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-a\n-b\n',
    expect: { 'old.txt': null },
  },
  {
    name: 'CRLF file, LF diff',
    source: 'SWE',
    files: { 'win.js': 'function f() {\r\n  return 1;\r\n}\r\n' },
    diff: d('win.js', '@@ -1,3 +1,4 @@', ' function f() {', '-  return 1;', '+  // one', '+  return 1 + 0;', ' }'),
    expect: { 'win.js': 'function f() {\r\n  // one\r\n  return 1 + 0;\r\n}\r\n' },
  },
  {
    name: 'only additions after a unique context line',
    source: 'AIDER',
    files: { 'src/say.js': SHOUT },
    diff: d('src/say.js', '@@ ... @@', ' const prefix = "> ";', '+const suffix = "!";'),
    expect: { 'src/say.js': replaceIn(SHOUT, 'const prefix = "> ";\n', 'const prefix = "> ";\nconst suffix = "!";\n') },
  },
  {
    name: 'a new argument between two similar blocks, no line numbers (Aider --check-update)',
    source: 'AIDER',
    files: { 'cli.py': ARGS },
    diff: d('cli.py', '@@ ... @@', '     group.add_argument(', '         "--version",', '         action="version",', '         help="Show the version and exit",', '     )', '+    group.add_argument(', '+        "--check-update",', '+        action="store_true",', '+    )', '     group.add_argument(', '         "--apply",'),
    expect: { 'cli.py': replaceIn(ARGS, '        help="Show the version and exit",\n    )\n', '        help="Show the version and exit",\n    )\n    group.add_argument(\n        "--check-update",\n        action="store_true",\n    )\n') },
  },
  {
    name: 'twin functions: the header line picks the right one',
    source: 'ROO',
    files: { 'twin.js': TWIN },
    diff: d('twin.js', '@@ -8,3 +8,3 @@', '   let n = 0;', '-  n += 1;', '+  n += 2;', '   return n;'),
    expect: { 'twin.js': `${TWIN.slice(0, TWIN.indexOf('function b'))}${TWIN.slice(TWIN.indexOf('function b')).replace('n += 1;', 'n += 2;')}` },
  },
  {
    name: 'twin functions told apart by the function line in the context',
    source: 'ROO',
    files: { 'twin.js': TWIN },
    diff: d('twin.js', '@@ @@', ' function b() {', '   let n = 0;', '-  n += 1;', '+  n += 3;'),
    expect: { 'twin.js': `${TWIN.slice(0, TWIN.indexOf('function b'))}${TWIN.slice(TWIN.indexOf('function b')).replace('n += 1;', 'n += 3;')}` },
  },
  {
    name: 'context written with double quotes where the file has single (one line)',
    source: 'ROO',
    files: { 'm.js': "const fs = require('fs');\nconst path = require('path');\n\nmodule.exports = fs;\n" },
    diff: d('m.js', '@@ -1,4 +1,4 @@', ' const fs = require("fs");', ' const path = require(\'path\');', ' ', '-module.exports = fs;', '+module.exports = { fs, path };'),
    expect: { 'm.js': "const fs = require('fs');\nconst path = require('path');\n\nmodule.exports = { fs, path };\n" },
  },
  {
    name: 'a hunk with no trailing context at the end of the file',
    source: 'SWE',
    files: { 'src/say.js': SHOUT },
    diff: d('src/say.js', '@@ -11 +11 @@', '-module.exports = { whisper, shout };', '+module.exports = { whisper, shout, prefix };'),
    expect: { 'src/say.js': replaceIn(SHOUT, 'module.exports = { whisper, shout };', 'module.exports = { whisper, shout, prefix };') },
  },
  {
    name: 'Python method gains a parameter; context with collapsed spaces',
    source: 'SWE',
    files: { 'pkg/config.py': PY },
    diff: d('pkg/config.py', '@@ -5,3 +5,4 @@', ' def __init__(self, path):', '-    self.path = path', '+        self.path = path', '+        self.strict = False', '     self.values = {}'),
    expect: { 'pkg/config.py': replaceIn(PY, '        self.path = path\n', '        self.path = path\n        self.strict = False\n') },
  },
  {
    name: 'the file gained a line between the context and the removed line',
    source: 'AMD',
    files: { 'k.js': 'function k() {\n  init();\n  // traced\n  run();\n}\n' },
    diff: d('k.js', '@@ -1,4 +1,4 @@', ' function k() {', '   init();', '-  run();', '+  run({ fast: true });', ' }'),
    expect: { 'k.js': 'function k() {\n  init();\n  // traced\n  run({ fast: true });\n}\n' },
  },

  // ---- changes that cannot be placed safely: refuse, never guess ----
  {
    name: 'a line to remove that is not in the file',
    source: 'AMD',
    files: { 'f.txt': 'line1\nline2\nline3\n' },
    diff: d('f.txt', '@@ -1,3 +1,3 @@', ' line1', '-no such line', '+new line', ' line3'),
    expect: 'refuse',
  },
  {
    name: 'overlapping hunks',
    source: 'AMD',
    files: { 'f.txt': 'l1\nl2\nl3\nl4\nl5\n' },
    diff: d('f.txt', '@@ -1,3 +1,3 @@', ' l1', ' l2', '-l3', '+m3', '@@ -2,3 +2,2 @@', ' l2', '-l3', '-l4', '+m34'),
    expect: 'refuse',
  },
  {
    name: 'a hunk whose second removed line belongs to code that is not there',
    source: 'AMD',
    files: { 'p.js': 'function partA() {\n  // some code A\n}\nfunction partB() {\n  // other code B\n}\n' },
    diff: d('p.js', '@@ -1,6 +1,6 @@', ' function partA() {', '-  // some code A', '+  // new code A', ' }', ' function partB() {', '-  // some code B', '+  // new code B', ' }'),
    expect: 'refuse',
  },
  {
    name: 'twin functions, no context to tell them apart and a header that points at neither',
    source: 'ROO',
    files: { 'twin.js': TWIN },
    diff: d('twin.js', '@@ -30,3 +30,3 @@', '   let n = 0;', '-  n += 1;', '+  n += 5;', '   return n;'),
    expect: 'refuse',
  },
  {
    name: 'an addition after `}` alone: fits many places',
    source: 'ROO',
    files: { 'twin.js': TWIN },
    diff: d('twin.js', '@@ @@', ' }', '+// end'),
    expect: 'refuse',
  },
  {
    name: 'three paraphrased context lines: too far from the file',
    source: 'SWE',
    files: { 'pkg/config.py': PY },
    diff: d('pkg/config.py', '@@ -9,5 +9,5 @@', '     def read(self):', '         with open(self.filename) as handle:', '             for row in handle:', '-                key, value = line.split("=")', '+                key, value = line.split("=", 1)'),
    expect: 'refuse',
  },
  {
    name: 'a diff written against a different file',
    source: 'SWE',
    files: { 'src/say.js': SHOUT },
    diff: d('src/say.js', '@@ -1,3 +1,3 @@', ' import React from "react";', '-export default App;', '+export default Root;'),
    expect: 'refuse',
  },
  {
    name: 'creating a file that already exists',
    source: 'AIDER',
    files: { 'src/say.js': SHOUT },
    diff: '--- /dev/null\n+++ b/src/say.js\n@@ -0,0 +1 @@\n+module.exports = {};\n',
    expect: 'refuse',
  },
  {
    name: 'changing a file that does not exist',
    source: 'SWE',
    files: { 'src/say.js': SHOUT },
    diff: d('src/yell.js', '@@ -1 +1 @@', '-a', '+b'),
    expect: 'refuse',
  },
  {
    name: 'an addition whose only context is paraphrased',
    source: 'ROO',
    files: { 'src/say.js': SHOUT },
    diff: d('src/say.js', '@@ @@', ' const PREFIX = ">>";', '+const suffix = "!";'),
    expect: 'refuse',
  },
  {
    name: 'removed lines in the wrong order',
    source: 'SWE',
    files: { 'f.txt': 'alpha\nbeta\ngamma\n' },
    diff: d('f.txt', '@@ -1,3 +1,2 @@', ' alpha', '-gamma', '-beta', '+delta'),
    expect: 'refuse',
  },
  {
    name: '`...` followed by a line that is not in the file',
    source: 'AIDER',
    files: { 'pkg/config.py': PY },
    diff: d('pkg/config.py', '@@ ... @@', ' class Config:', ' ...', '     def save(self):', '-        pass', '+        write(self.values)'),
    expect: 'refuse',
  },
  {
    name: 'a removed line whose indentation alone matches a different statement',
    source: 'SWE',
    files: { 'calc/calc.go': GO },
    diff: d('calc/calc.go', '@@ -5,3 +5,3 @@', ' \tfor _, x := range xs {', '-\t\ttotal -= x', '+\t\ttotal += 2 * x', ' \t}'),
    expect: 'refuse',
  },
];

import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { SolveDto } from './dto/solve.dto';
import { parseIssueUrl } from './issue-url';
import { filesMessages, issueText, parseFilesReply, repairMessages, solutionMessages } from './prompts';

describe('parseFilesReply', () => {
  it.each([
    ['plain JSON', '{"files": ["src/a.ts", "lib/b.py"]}', ['src/a.ts', 'lib/b.py']],
    ['in a ```json fence', '```json\n{"files": ["src/a.ts"]}\n```', ['src/a.ts']],
    ['with prose around it', 'Sure! Here you go: {"files": ["src/a.ts", " x.go "]} Hope it helps {not json}', ['src/a.ts', 'x.go']],
    ['a bare array', '["a.ts", "b.ts"]', ['a.ts', 'b.ts']],
    ['objects with a path', '{"files": [{"path": "a.ts", "why": "it"}, 3, ""]}', ['a.ts']],
    ['braces inside strings', '{"note": "use {x}", "files": ["a}.ts"]}', ['a}.ts']],
    ['nothing usable', 'I think src/a.ts', []],
    ['truncated JSON', '{"files": ["a.ts", "b', []],
  ])('%s', (_name, content, expected) => {
    expect(parseFilesReply(content)).toEqual(expected);
  });
});

describe('issue URLs', () => {
  it.each([
    ['https://github.com/octo/calc/issues/7', { owner: 'octo', repo: 'calc', number: 7 }],
    ['https://github.com/octo-org/my.repo_x/issues/12345/', { owner: 'octo-org', repo: 'my.repo_x', number: 12345 }],
    ['https://github.com/octo/calc/issues/7#issuecomment-1', { owner: 'octo', repo: 'calc', number: 7 }],
  ])('%s names an issue', (url, ref) => {
    expect(parseIssueUrl(url)).toEqual(ref);
    expect(validateSync(plainToInstance(SolveDto, { issue_url: url }))).toEqual([]);
  });

  it.each([
    'http://github.com/octo/calc/issues/7',
    'https://gitlab.com/octo/calc/issues/7',
    'https://github.com/octo/calc/pull/7',
    'https://github.com/octo/calc/issues/0',
    'https://github.com/octo/calc/issues/abc',
    'https://github.com/octo/issues/7',
    'https://github.com.evil.com/octo/calc/issues/7',
    'https://github.com/-octo/calc/issues/7',
    ' https://github.com/octo/calc/issues/7',
  ])('%s does not', (url) => {
    expect(validateSync(plainToInstance(SolveDto, { issue_url: url }))[0]?.property).toBe('issue_url');
  });

  it('open_pr must be a boolean', () => {
    const errors = validateSync(plainToInstance(SolveDto, { issue_url: 'https://github.com/o/r/issues/1', open_pr: 'yes' }));
    expect(errors.map((e) => e.property)).toEqual(['open_pr']);
  });
});

describe('prompts', () => {
  const context = {
    ref: { owner: 'octo', repo: 'calc', number: 7 },
    issue: { number: 7, title: 'NaN', body: 'average is NaN', state: 'open', author: 'alice', comments: 1, isPullRequest: false },
    comments: [{ author: 'bob', body: 'me too' }],
  };

  it('the file request says JSON (DeepSeek JSON mode needs the word) and carries issue and map', () => {
    const [system, user] = filesMessages(issueText(context), 'src/math.js (1 KB)', 'main');
    expect(system.content).toMatch(/JSON/);
    expect(system.content).toMatch(/\{"files": \[/);
    expect(user.content).toContain('# Issue octo/calc#7: NaN');
    expect(user.content).toContain('@bob: me too');
    expect(user.content).toContain('src/math.js (1 KB)');
  });

  it('the solution request shows each file fenced safely and asks for one ```diff block; a repair replays the exchange', () => {
    const messages = solutionMessages('ISSUE', [{ path: 'doc.md', text: 'has ``` inside\n' }], ['big.js is too large']);
    expect(messages[1].content).toContain('## doc.md\n````\nhas ``` inside\n````');
    expect(messages[1].content).toContain('Note: big.js is too large');
    expect(messages[0].content).toMatch(/```diff/);
    const repair = repairMessages(messages, 'ANSWER', ['why 1', 'why 2']);
    expect(repair.slice(0, 2)).toEqual(messages);
    expect(repair[2]).toEqual({ role: 'assistant', content: 'ANSWER' });
    expect(repair[3].content).toContain('does not apply');
    expect(repair[3].content).toContain('- why 1\n- why 2');
  });
});

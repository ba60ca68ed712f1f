import { applyDiff } from '../src/solver/patch';
import { CASES } from './solver-corpus/cases';

/**
 * The corpus of model-written diffs (test/solver-corpus/cases.ts): how many apply correctly, how
 * many are refused correctly, and — the one number that must stay 0 — how many land wrongly.
 * Every well-placed change must apply, too.
 */
describe('Solver patch corpus: model-written diffs', () => {
  const outcomes = CASES.map((c) => {
    const sources = new Map(Object.entries(c.files));
    const result = applyDiff(c.diff, sources);
    let verdict: 'applied' | 'refused' | 'applied wrongly' | 'refused wrongly';
    if (c.expect === 'refuse') verdict = result.applies ? 'applied wrongly' : 'refused';
    else if (!result.applies) verdict = 'refused wrongly';
    else {
      const expected = c.expect;
      const after = new Map(result.files.map((f) => [f.path, f.deleted ? null : (f.after ?? null)]));
      const right = Object.entries(expected).every(([path, text]) => after.get(path) === text) && after.size === Object.keys(expected).length;
      verdict = right ? 'applied' : 'applied wrongly';
    }
    return { c, result, verdict };
  });

  it('has at least 40 cases, each with its source', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(40);
    for (const c of CASES) expect(['AIDER', 'AMD', 'ROO', 'ISSUE', 'SWE']).toContain(c.source);
  });

  it('applies every well-placed change, refuses the rest, never lands one wrongly', () => {
    const count = (v: string) => outcomes.filter((o) => o.verdict === v).length;
    console.log(
      `patch corpus: ${CASES.length} cases — ${count('applied')} applied correctly, ${count('refused')} refused correctly, ` +
        `${count('applied wrongly')} applied wrongly, ${count('refused wrongly')} refused wrongly`,
    );
    const wrong = outcomes.filter((o) => o.verdict === 'applied wrongly' || o.verdict === 'refused wrongly');
    expect(wrong.map((o) => `${o.verdict}: ${o.c.name} — ${o.result.reasons.join('; ') || JSON.stringify(o.result.files.map((f) => f.after))}`)).toEqual([]);
  });

  it('a refusal names the exact mismatch (for the repair round)', () => {
    for (const { c, result } of outcomes.filter((o) => o.verdict === 'refused')) {
      expect({ name: c.name, reason: result.reasons[0] }).toEqual({ name: c.name, reason: expect.stringMatching(/\S/) });
    }
    const ambiguous = outcomes.find((o) => o.c.name.startsWith('an addition after `}` alone'))!;
    expect(ambiguous.result.reasons[0]).toMatch(/fit \d+ places \(lines [\d, ]+\); give more context/);
    const missing = outcomes.find((o) => o.c.name === 'a line to remove that is not in the file')!;
    expect(missing.result.reasons[0]).toBe('f.txt: hunk 1 (@@ -1,3 +1,3 @@): the line to remove `no such line` is not in the file');
  });
});

import { type SplitPiece, ThinkTagSplitter } from './think-tags';

/** Feeds the pieces, then flushes; returns the reasoning and content texts joined, and the pieces. */
function run(pieces: string[]): { reasoning: string; content: string; out: SplitPiece[] } {
  const s = new ThinkTagSplitter();
  const out = [...pieces.flatMap((p) => s.push(p)), ...s.flush()];
  const join = (type: SplitPiece['type']) =>
    out
      .filter((p) => p.type === type)
      .map((p) => p.text)
      .join('');
  return { reasoning: join('reasoning'), content: join('content'), out };
}

/** Every way of cutting `text` into pieces of `size` characters. */
function cuts(text: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

describe('ThinkTagSplitter', () => {
  const cases: Array<[string, string, string, string]> = [
    ['a think block, then the answer', '<think>\nI reason, 2 < 3.\n</think>\n\nThe answer.', 'I reason, 2 < 3.', 'The answer.'],
    ['leading whitespace before the tag', '\n  <think>x</think>y', 'x', 'y'],
    ['no tag: all content, exactly', '  Plain <b>answer</b> with <think>later</think> tags', '', '  Plain <b>answer</b> with <think>later</think> tags'],
    ['a "<" that is not the tag', '<thought>not a tag', '', '<thought>not a tag'],
    ['a partial closing tag inside the block is reasoning', '<think>a </thin b </think>c', 'a </thin b', 'c'],
    ['ends inside the block', '<think>\nstill going ', 'still going', ''],
    ['empty block', '<think>\n\n</think>\n\nJust this.', '', 'Just this.'],
    ['only the start of the tag, then the end', '<thi', '', '<thi'],
    ['whitespace only', '\n\n', '', '\n\n'],
    ['multi-byte text', '<think>ünï ✓</think>🎉 ok', 'ünï ✓', '🎉 ok'],
  ];

  it.each(cases)('%s, cut in pieces of every size', (_name, text, reasoning, content) => {
    for (let size = 1; size <= text.length; size++) {
      const got = run(cuts(text, size));
      expect({ size, reasoning: got.reasoning, content: got.content }).toEqual({ size, reasoning, content });
    }
  });

  it('emits reasoning as it arrives: only a possible tag and edge whitespace are held back', () => {
    const s = new ThinkTagSplitter();
    expect(s.push('<thi')).toEqual([]);
    expect(s.push('nk>\n')).toEqual([]);
    expect(s.push('Step one, ')).toEqual([{ type: 'reasoning', text: 'Step one,' }]);
    expect(s.push('step two </th')).toEqual([{ type: 'reasoning', text: ' step two' }]);
    expect(s.push('ink>\n\n')).toEqual([]);
    expect(s.push('Answer')).toEqual([{ type: 'content', text: 'Answer' }]);
    expect(s.push(' <think>more</think>')).toEqual([{ type: 'content', text: ' <think>more</think>' }]);
    expect(s.flush()).toEqual([]);
  });

  it('an answer without a tag passes through piece by piece, nothing held', () => {
    const s = new ThinkTagSplitter();
    expect(s.push('Hello')).toEqual([{ type: 'content', text: 'Hello' }]);
    expect(s.push(' <')).toEqual([{ type: 'content', text: ' <' }]);
    expect(s.flush()).toEqual([]);
  });

  it('a long think block is never held whole', () => {
    const s = new ThinkTagSplitter();
    s.push('<think>');
    let emitted = 0;
    for (let i = 0; i < 100; i++) emitted += s.push('word ').length;
    expect(emitted).toBeGreaterThanOrEqual(99);
  });
});

import 'reflect-metadata';
import { plainToInstance } from 'class-transformer';
import { type Message } from '../storage/messages.repository';
import { attachmentsWithinBudget, buildContext, type ChatSettings, estimateTokens, mergeSettings, titleFrom, withAttachedText } from './context';
import { ChatOptionsDto } from './dto/user-message.dto';

let counter = 0;
function row(role: 'user' | 'assistant', content: string, extra: Partial<Message> = {}): Message {
  counter += 1;
  return {
    id: `m${counter}`,
    chat_id: 'c',
    role,
    content,
    reasoning: null,
    status: 'complete',
    model: role === 'assistant' ? 'm' : null,
    usage: null,
    error_code: null,
    finish_reason: null,
    request_id: null,
    seq: 0,
    created_at: new Date(1_700_000_000_000 + counter).toISOString(),
    updated_at: new Date(1_700_000_000_000 + counter).toISOString(),
    replaced_by: null,
    previous_versions: [],
    attachments: [],
    instance_id: null,
    omitted_turns: null,
    ...extra,
  };
}
const user = (content: string) => row('user', content);
const answer = (content: string, extra: Partial<Message> = {}) => row('assistant', content, extra);

describe('mergeSettings', () => {
  const current: ChatSettings = { model: 'm1', thinking: true, temperature: 0.7, system_prompt: 'Be kind' };

  it('returns the current settings when no options are given', () => {
    expect(mergeSettings(current, undefined)).toBe(current);
  });

  it('sets given fields, resets null ones, keeps undefined and absent ones', () => {
    const merged = mergeSettings(current, { model: 'm2', temperature: null, max_tokens: 50, system_prompt: undefined });
    expect(merged).toEqual({ model: 'm2', thinking: true, max_tokens: 50, system_prompt: 'Be kind' });
    expect(merged).not.toHaveProperty('temperature');
    expect(current).toEqual({ model: 'm1', thinking: true, temperature: 0.7, system_prompt: 'Be kind' }); // not mutated
  });

  it('keeps falsy values that are not null (false, 0, empty string)', () => {
    expect(mergeSettings(current, { thinking: false, temperature: 0, system_prompt: '' })).toEqual({
      model: 'm1',
      thinking: false,
      temperature: 0,
      system_prompt: '',
    });
  });

  it('ignores keys that are not settings', () => {
    expect(mergeSettings({}, { model: 'x', foo: 'bar' } as never)).toEqual({ model: 'x' });
  });

  it('works on a validated DTO instance, whose absent fields exist as undefined', () => {
    const dto = plainToInstance(ChatOptionsDto, { max_tokens: 10, thinking: null });
    expect(mergeSettings(current, dto)).toEqual({ model: 'm1', temperature: 0.7, system_prompt: 'Be kind', max_tokens: 10 });
  });
});

describe('buildContext', () => {
  it('puts the system prompt first, then every turn in order', () => {
    const history = [user('q1'), answer('a1'), user('q2'), answer('a2'), user('q3')];
    expect(buildContext(history, 'You are terse.', 65536)).toEqual({
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'q1' },
        { role: 'assistant', content: 'a1' },
        { role: 'user', content: 'q2' },
        { role: 'assistant', content: 'a2' },
        { role: 'user', content: 'q3' },
      ],
      omittedTurns: 0,
    });
  });

  it('sends no system message without a system prompt (nor for an empty one)', () => {
    expect(buildContext([user('hi')], undefined, 1000).messages).toEqual([{ role: 'user', content: 'hi' }]);
    expect(buildContext([user('hi')], '', 1000).messages).toEqual([{ role: 'user', content: 'hi' }]);
  });

  describe('over budget', () => {
    // every message is 36 characters: 9 + 4 = 13 tokens; a turn of question and answer is 26
    const text = (tag: string) => tag.padEnd(36, '.');
    const history = () => [user(text('q1')), answer(text('a1')), user(text('q2')), answer(text('a2')), user(text('q3')), answer(text('a3'))];
    const system = 'sys'; // 1 + 4 = 5 tokens

    it('the estimate is about four characters a token', () => {
      expect(estimateTokens(text('x'))).toBe(13);
      expect(estimateTokens(system)).toBe(5);
    });

    it('drops whole turns, oldest first, counting the system prompt; a turn that just fits stays', () => {
      const fitsTwo = buildContext(history(), system, 5 + 26 + 26);
      expect(fitsTwo.messages.map((m) => m.content.slice(0, 2))).toEqual(['sy', 'q2', 'a2', 'q3', 'a3']);
      expect(fitsTwo.omittedTurns).toBe(1);

      const oneShort = buildContext(history(), system, 5 + 26 + 26 - 1);
      expect(oneShort.messages.map((m) => m.content.slice(0, 2))).toEqual(['sy', 'q3', 'a3']);
      expect(oneShort.omittedTurns).toBe(2);
    });

    it('never splits a turn: room for an answer but not its question drops both', () => {
      const ctx = buildContext(history(), undefined, 26 + 13);
      expect(ctx.messages.map((m) => m.content.slice(0, 2))).toEqual(['q3', 'a3']);
      expect(ctx.omittedTurns).toBe(2);
    });

    it('stops at the first turn that does not fit, even if an older, smaller one would', () => {
      const rows = [user('tiny'), user('x'.repeat(400)), user(text('q3'))];
      const ctx = buildContext(rows, undefined, 13 + 8);
      expect(ctx.messages).toEqual([{ role: 'user', content: text('q3') }]);
      expect(ctx.omittedTurns).toBe(2);
    });

    it('always keeps the newest turn and the system prompt, even alone over the budget', () => {
      const huge = 'x'.repeat(40_000);
      const ctx = buildContext([user('old'), answer('older answer'), user(huge)], 'Long system prompt', 256);
      expect(ctx.messages).toEqual([
        { role: 'system', content: 'Long system prompt' },
        { role: 'user', content: huge },
      ]);
      expect(ctx.omittedTurns).toBe(1);
    });
  });

  it('leaves out failed, empty and still-streaming answers, but keeps stopped and interrupted text', () => {
    const history = [
      user('q1'),
      answer('', { status: 'error', error_code: 'upstream_auth' }),
      user('q2'),
      answer('partial so far', { status: 'streaming' }),
      user('q3'),
      answer('cut here', { status: 'interrupted' }),
      user('q4'),
      answer('stopped here', { status: 'stopped' }),
      user('q5'),
      answer('', { status: 'complete' }),
      user('q6'),
    ];
    expect(buildContext(history, undefined, 65536)).toEqual({
      messages: [
        { role: 'user', content: 'q1' },
        { role: 'user', content: 'q2' },
        { role: 'user', content: 'q3' },
        { role: 'assistant', content: 'cut here' },
        { role: 'user', content: 'q4' },
        { role: 'assistant', content: 'stopped here' },
        { role: 'user', content: 'q5' },
        { role: 'user', content: 'q6' },
      ],
      omittedTurns: 0,
    });
  });

  it('excluded answers cost nothing against the budget', () => {
    const long = 'z'.repeat(4000);
    const history = [user('q1'), answer(long, { status: 'streaming' }), user('q2')];
    const ctx = buildContext(history, undefined, estimateTokens('q1') + estimateTokens('q2'));
    expect(ctx.messages).toEqual([
      { role: 'user', content: 'q1' },
      { role: 'user', content: 'q2' },
    ]);
    expect(ctx.omittedTurns).toBe(0);
  });

  it('never sends reasoning back to the model', () => {
    const history = [user('q1'), answer('the answer', { reasoning: 'SECRET THOUGHTS' }), user('q2')];
    const ctx = buildContext(history, undefined, 65536);
    expect(JSON.stringify(ctx)).not.toContain('SECRET');
    expect(ctx.messages[1]).toEqual({ role: 'assistant', content: 'the answer' });
  });

  it('drops an answer that comes before any question', () => {
    expect(buildContext([answer('orphan'), user('q')], undefined, 1000).messages).toEqual([{ role: 'user', content: 'q' }]);
  });

  it('an empty history gives only the system prompt', () => {
    expect(buildContext([], 'sys', 1000)).toEqual({ messages: [{ role: 'system', content: 'sys' }], omittedTurns: 0 });
  });
});

describe('attachmentsWithinBudget', () => {
  const withFiles = (content: string, ...ids: string[]) => row('user', content, { attachments: ids });
  const sizes = new Map([
    ['old', 600_000],
    ['big', 12_000], // at least 1,000 tokens
    ['now', 100],
  ]);

  it('names the files of the turns that may still fit; once newer turns fill the budget, older files are not needed', () => {
    const history = [withFiles('first', 'old'), answer('a1'), withFiles('second', 'big'), answer('a2'), withFiles('third', 'now')];
    expect(attachmentsWithinBudget(history, sizes, 500)).toEqual(['now', 'big']);
    // buildContext, given the real text, leaves out the turn whose file was not read
    const text = new Map([...sizes].map(([id, size]) => [id, withAttachedText('', [{ name: id, content: 'x'.repeat(size) }])]));
    const real = history.map((r) => (r.attachments.length ? { ...r, content: r.content + r.attachments.map((id) => text.get(id)).join('') } : r));
    expect(buildContext(real, undefined, 500).omittedTurns).toBe(2);
    // a budget that holds the newer turns needs the older file too
    expect(attachmentsWithinBudget(history, sizes, 1_100)).toEqual(['now', 'big', 'old']);
  });

  it("always names the newest message's files, however big", () => {
    expect(attachmentsWithinBudget([withFiles('only', 'old')], sizes, 256)).toEqual(['old']);
  });
});

describe('titleFrom', () => {
  it('takes the first line with words, collapses whitespace and trims', () => {
    expect(titleFrom('  Hello \t there \n\n  world again  ')).toBe('Hello there');
    expect(titleFrom('\n\n  second  line\nthird')).toBe('second line');
  });

  it('strips Markdown: headings, emphasis, code ticks, fences, links, lists, quotes', () => {
    expect(titleFrom('Here is code: ```python def quicksort(a): ...```')).toBe('Here is code: def quicksort(a): ...');
    expect(titleFrom('```python\ndef quicksort(a):\n    pass\n```')).toBe('def quicksort(a):');
    expect(titleFrom('## Why does **my** `useEffect` run _twice_?')).toBe('Why does my useEffect run twice?');
    expect(titleFrom('> see [the docs](https://example.com/x) and ![a chart](c.png)')).toBe('see the docs and a chart');
    expect(titleFrom('- [x] 1. *fix* the build')).toBe('fix the build');
    expect(titleFrom('snake_case_name and 2*3*4 stay')).toBe('snake_case_name and 2*3*4 stay');
  });

  it('is "New chat" for empty or blank text', () => {
    expect(titleFrom('')).toBe('New chat');
    expect(titleFrom(' \n\t ')).toBe('New chat');
  });

  it('keeps a 60-character line whole', () => {
    const sixty = 'a'.repeat(60);
    expect(titleFrom(sixty)).toBe(sixty);
  });

  it('cuts a longer line at the last word within 60 characters and adds …', () => {
    expect(titleFrom('The quick brown fox jumps over the lazy dog and then keeps running far away')).toBe(
      'The quick brown fox jumps over the lazy dog and then keeps…',
    );
    expect(titleFrom('word '.repeat(20))).toBe(`${'word '.repeat(12).trimEnd()}…`);
  });

  it('cuts hard at 60 when there is no word break past the middle', () => {
    expect(titleFrom('x'.repeat(70))).toBe(`${'x'.repeat(60)}…`);
    expect(titleFrom('Short words then averyveryveryveryveryveryverylongwordthatgoesonandon and more')).toBe(
      'Short words then averyveryveryveryveryveryverylongwordthatgo…',
    );
  });
});

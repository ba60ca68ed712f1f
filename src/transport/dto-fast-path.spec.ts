import { ValidationPipe } from '@nestjs/common';
import { Transform, Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, registerDecorator, ValidateNested } from 'class-validator';
import { RegenerateDto, ResumeDto, SubscribeDto } from '../chat/dto/control.dto';
import { UserMessageDto } from '../chat/dto/user-message.dto';
import { AppError } from '../common/app-error';
import { StopDto } from '../generation/dto/stop.dto';
import { SolveDto } from '../solver/dto/solve.dto';
import { WatchRunDto } from '../solver/dto/watch-run.dto';
import { fastPathFor } from './dto-fast-path';
import { FrameValidationPipe } from './frame-validation.pipe';

const UUID = '0f8fd0a4-6d7c-4a4e-9c3e-6a8e2f3b1c2d';
const ISSUE = 'https://github.com/octo/repo/issues/12';

/** Values every property is tried with (replacing, adding, or removing it). */
const VALUES: unknown[] = [
  undefined,
  null,
  '',
  'x',
  UUID,
  ISSUE,
  -1,
  0,
  1.5,
  2.5,
  7,
  true,
  false,
  [],
  ['a', 'b'],
  [1],
  [null],
  {},
  { a: 1 },
  'y'.repeat(32_001),
];

/** Valid frames of every DTO the gateways take (the base every variant starts from). */
const BASES: Array<[new () => object, Record<string, unknown>]> = [
  [
    UserMessageDto,
    {
      type: 'user_message',
      id: 'r1',
      content: 'hello',
      chat_id: UUID,
      attachments: [UUID],
      options: { model: 'deepseek-chat', thinking: true, temperature: 0.7, max_tokens: 100, system_prompt: 'be brief' },
    },
  ],
  [UserMessageDto, { type: 'user_message', content: 'hello' }],
  [UserMessageDto, { type: 'user_message', content: 'hi', options: { model: null, thinking: null } }],
  [RegenerateDto, { type: 'regenerate', id: 'r2', message_id: UUID }],
  [ResumeDto, { type: 'resume', message_id: UUID, after_seq: 3 }],
  [SubscribeDto, { type: 'subscribe', chat_id: UUID }],
  [StopDto, { type: 'stop', message_id: UUID }],
  [StopDto, { type: 'stop', run_id: UUID }],
  [SolveDto, { type: 'solve', issue_url: ISSUE, open_pr: false }],
  [WatchRunDto, { type: 'solver_watch', run_id: UUID, after_seq: 0 }],
];

/** The base, and the base with each property (and a few extra keys) replaced by each value. */
function variants(base: Record<string, unknown>): Record<string, unknown>[] {
  const keys = [...Object.keys(base), 'extra', 'constructor'];
  const nested = Object.entries(base).filter(([, v]) => v !== null && typeof v === 'object' && !Array.isArray(v)) as Array<[string, Record<string, unknown>]>;
  const out = [base];
  for (const key of keys) for (const value of VALUES) out.push({ ...base, [key]: value });
  for (const [key, inner] of nested) {
    for (const innerKey of [...Object.keys(inner), 'extra']) for (const value of VALUES) out.push({ ...base, [key]: { ...inner, [innerKey]: value } });
  }
  return out;
}

/**
 * The frames the fast path leaves to the full pipe on purpose, at any depth: a `constructor` key, an
 * object under a key without `@Type` (all but `options` here), an array under `options` or holding an object.
 */
function leftToFullPipe(value: Record<string, unknown>): boolean {
  return Object.entries(value).some(([key, v]) => {
    if (key === 'constructor') return true;
    if (Array.isArray(v)) return key === 'options' || v.some((e) => e !== null && typeof e === 'object');
    if (v === null || typeof v !== 'object') return false;
    return key !== 'options' || leftToFullPipe(v as Record<string, unknown>);
  });
}

/** As a frame arrives: parsed JSON (so `undefined` drops out and `__proto__` can be an own key). */
const parsed = (frame: Record<string, unknown>): Record<string, unknown> => JSON.parse(JSON.stringify(frame)) as Record<string, unknown>;

async function fullPipe(value: unknown, metatype: new () => object): Promise<{ ok: true; value: unknown } | { ok: false }> {
  try {
    return { ok: true, value: await ValidationPipe.prototype.transform.call(new FrameValidationPipe(), value, { type: 'body', metatype }) };
  } catch {
    return { ok: false };
  }
}

describe('DTO fast path', () => {
  it.each(BASES.map(([dto, base]) => [dto.name, dto, base] as const))(
    '%s: agrees with ValidationPipe on every variant, and takes the valid ones',
    async (_name, dto, base) => {
      const fast = fastPathFor(dto);
      expect(fast).toBeDefined();
      let taken = 0;
      for (const frame of variants(base)) {
        const full = await fullPipe(parsed(frame), dto);
        const quick = fast!(parsed(frame));
        // Every frame the full pipe accepts is taken, bar the shapes left to it on purpose.
        const leftToPipe = leftToFullPipe(parsed(frame));
        expect({ frame, taken: quick !== undefined }).toEqual({ frame, taken: full.ok && !leftToPipe });
        if (quick === undefined) continue;
        taken++;
        // The same instance as the full pipe's (classes of nested values included).
        expect(quick).toStrictEqual((full as { value: unknown }).value);
      }
      expect(taken).toBeGreaterThan(20);
    },
  );

  it('asks a @Type for its class as class-transformer does (with the object), and agrees with the pipe', async () => {
    class Small {
      @IsInt()
      n!: number;
    }
    class Named {
      @IsString()
      name!: string;
    }
    class Holder {
      @IsString()
      kind!: string;
      @ValidateNested()
      @Type((options) => ((options?.object as { kind?: string })?.kind === 'named' ? Named : Small))
      item!: Small | Named;
    }
    const fast = fastPathFor(Holder)!;
    for (const frame of [
      { kind: 'small', item: { n: 1 } },
      { kind: 'named', item: { name: 'x' } },
      { kind: 'named', item: { n: 1 } },
      { kind: 'small', item: { name: 'x' } },
    ]) {
      const full = await fullPipe(parsed(frame), Holder);
      const quick = fast(parsed(frame));
      expect({ frame, taken: quick !== undefined }).toEqual({ frame, taken: full.ok });
      if (quick) expect(quick).toStrictEqual((full as { value: unknown }).value);
    }
  });

  it('keeps a frame whose own __proto__ key would pollute the instance for the full pipe', () => {
    const frame = JSON.parse(`{"type":"user_message","content":"hi","__proto__":{"admin":true}}`) as object;
    expect(fastPathFor(UserMessageDto)!(frame)).toBeUndefined();
  });

  it('copies arrays and nested objects instead of sharing them with the frame', () => {
    const frame = { type: 'user_message', content: 'hi', attachments: [UUID], options: { thinking: true } };
    const dto = fastPathFor(UserMessageDto)!(frame) as UserMessageDto;
    expect(dto).toBeInstanceOf(UserMessageDto);
    expect(dto.options!.constructor.name).toBe('ChatOptionsDto');
    expect(dto.attachments).not.toBe(frame.attachments);
    expect(dto.options).not.toBe(frame.options);
  });

  describe('DTOs whose metadata it does not follow get no fast path', () => {
    it('@Transform', () => {
      class Trimmed {
        @Transform(({ value }: { value: string }) => value.trim())
        @IsString()
        text!: string;
      }
      expect(fastPathFor(Trimmed)).toBeUndefined();
    });

    it('an async constraint', () => {
      class Checked {
        @IsString()
        text!: string;
      }
      registerDecorator({ name: 'remote', target: Checked, propertyName: 'text', async: true, validator: { validate: async () => true } });
      expect(fastPathFor(Checked)).toBeUndefined();
    });

    it('a method or accessor on the prototype (class-transformer skips them)', () => {
      class WithGetter {
        @IsInt()
        n!: number;
        get double(): number {
          return this.n * 2;
        }
      }
      expect(fastPathFor(WithGetter)).toBeUndefined();
    });

    it('no validation metadata at all', () => {
      class Bare {}
      expect(fastPathFor(Bare)).toBeUndefined();
    });

    it('a nested class that itself has none (followed by the full pipe)', () => {
      class Inner {
        @Transform(({ value }: { value: string }) => value.toUpperCase())
        name!: string;
      }
      class Outer {
        @IsOptional()
        @ValidateNested()
        @Type(() => Inner)
        inner?: Inner;
      }
      const fast = fastPathFor(Outer)!;
      expect(fast({})).toBeDefined();
      expect(fast({ inner: { name: 'a' } })).toBeUndefined();
    });
  });

  describe('through FrameValidationPipe', () => {
    const pipe = new FrameValidationPipe();
    const meta = { type: 'body' as const, metatype: UserMessageDto };

    it('answers a valid frame from the fast path (ValidationPipe is not asked)', async () => {
      const spy = jest.spyOn(ValidationPipe.prototype, 'transform');
      try {
        const dto = await pipe.transform({ type: 'user_message', content: 'hi' }, meta);
        expect(dto).toBeInstanceOf(UserMessageDto);
        expect(spy).not.toHaveBeenCalled();
      } finally {
        spy.mockRestore();
      }
    });

    it('leaves an invalid frame to ValidationPipe: invalid_message naming the field', async () => {
      const error = await pipe.transform({ type: 'user_message', content: 'hi', options: { temperature: 3 } }, meta).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AppError);
      expect(error).toMatchObject({ code: 'invalid_message', message: expect.stringMatching(/^options\.temperature: /) });
    });

    it('passes a value with no DTO (the socket, a primitive) through unchanged', async () => {
      const socket = { readyState: 1 };
      await expect(pipe.transform(socket, { type: 'custom', metatype: Object })).resolves.toBe(socket);
      await expect(pipe.transform('x', { type: 'body', metatype: String })).resolves.toBe('x');
    });
  });
});

import { randomBytes } from 'node:crypto';
import { type RunningApp, startApp } from './support/app';
import { WsTestClient } from './support/ws-client';

/** A deterministic generator, so a failure can be replayed. */
function prng(seed: number) {
  return () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

const TYPES = ['user_message', 'resume', 'subscribe', 'stop', 'regenerate', 'solve', 'dance', '', '__proto__', 'constructor'];
const VALUES: unknown[] = [
  null,
  true,
  0,
  -1,
  1e308,
  9007199254740993,
  '',
  'x'.repeat(10000),
  [],
  {},
  [[[[]]]],
  { __proto__: { polluted: 1 } },
  '00000000-0000-4000-8000-000000000000',
  'not-a-uuid',
  NaN,
];

/** One malformed frame: not JSON, not an object, a bad type, or a known type with bad fields. */
function malformed(random: () => number): string | Buffer {
  const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)];
  switch (Math.floor(random() * 8)) {
    case 0:
      return randomBytes(1 + Math.floor(random() * 64)); // binary, often invalid UTF-8
    case 1:
      return '{'.repeat(1 + Math.floor(random() * 5000)); // truncated deep nesting
    case 2:
      return '['.repeat(2000) + ']'.repeat(2000); // deep nesting that parses
    case 3:
      return JSON.stringify(pick(VALUES)); // JSON but not an object
    case 4:
      return `{"type":"user_message","__proto__":{"content":"x"},"constructor":{"prototype":{"polluted":1}}}`;
    case 5:
      return JSON.stringify({ type: pick(VALUES), content: 'hello' });
    case 6:
      return JSON.stringify({
        type: pick(TYPES),
        content: pick(VALUES),
        chat_id: pick(VALUES),
        message_id: pick(VALUES),
        after_seq: pick(VALUES),
        options: pick(VALUES),
      });
    default:
      return `{"type":"resume","message_id":"00000000-0000-4000-8000-000000000000","after_seq":1e400}`;
  }
}

describe('fuzzing /ws with malformed frames (e2e)', () => {
  let server: RunningApp;
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => rejections.push(reason);

  beforeAll(async () => {
    process.on('unhandledRejection', onRejection);
    // No model configured: a frame that happens to be valid cannot start a real turn.
    server = await startApp({ WS_MAX_PAYLOAD: '65536', RATE_LIMIT_PER_MINUTE: '0' });
  });
  afterAll(async () => {
    process.off('unhandledRejection', onRejection);
    await server.close();
  });

  it('answers each of 10,000 malformed frames with an error and stays alive', async () => {
    const random = prng(20261128);
    const ws = await WsTestClient.connect(server.wsUrl);
    const total = 10_000;
    const batch = 500;
    for (let sent = 0; sent < total; sent += batch) {
      for (let i = 0; i < batch; i++) ws.send(malformed(random));
      // Every frame gets exactly one error frame; wait for this batch's.
      const target = sent + batch;
      while (ws.frames.filter((f) => f.type === 'error').length < target) await ws.next(() => true, 10_000);
    }
    const replies = ws.frames.filter((f) => f.type === 'error');
    expect(replies).toHaveLength(total);
    // A frame that happens to be a valid message (null fields count as absent) opens a chat, stores
    // the message and then answers model_not_configured: those are the only other frames.
    const others = ws.frames.slice(1).filter((f) => f.type !== 'error');
    expect(new Set(others.map((f) => f.type))).toEqual(new Set(others.length ? ['chat_created', 'user_message'] : []));
    const codes = new Set(replies.map((f) => f.code));
    for (const code of codes) expect(['invalid_json', 'invalid_message', 'unknown_type', 'not_found', 'model_not_configured']).toContain(code);
    expect(replies.filter((f) => f.code === 'internal')).toEqual([]);
    ws.send({ type: 'ping', id: 'alive' });
    expect(await ws.nextOfType('pong')).toEqual({ type: 'pong', id: 'alive' });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(rejections).toEqual([]);
    ws.close();
  }, 120_000);
});

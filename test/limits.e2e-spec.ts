import { Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { FilesRepository } from '../src/storage/files.repository';
import { FakeDeepSeek } from './fakes/deepseek.fake';
import { type RunningApp, startApp, tempDatabaseUrl } from './support/app';
import { TEST_REDIS_URL, usingPostgres } from './support/databases';
import { WsTestClient } from './support/ws-client';

/**
 * Per-user limits: each refusal names its setting, and a refused request leaves no row behind and
 * makes no model request (the fake records every chat completion it is asked for).
 */
/** The app on a fake model server that records its requests, with these limits. */
async function withFakeModel(limits: Record<string, string>): Promise<{ fake: FakeDeepSeek; server: RunningApp }> {
  const fake = await FakeDeepSeek.start();
  return { fake, server: await startApp({ DEEPSEEK_BASE_URL: fake.baseUrl, DEEPSEEK_API_KEY: 'test-key', ...limits }) };
}

describe('limits that hold: attachments, stored files, options (e2e)', () => {
  let fake: FakeDeepSeek;
  let server: RunningApp;
  let ws: WsTestClient;

  beforeAll(async () => {
    ({ fake, server } = await withFakeModel({
      MAX_ATTACHMENTS_PER_MESSAGE: '2',
      MAX_ATTACHMENT_BYTES_PER_TURN: '3000',
      CONTEXT_TOKENS: '800',
      FILE_QUOTA_BYTES: '10000',
      MAX_TOKENS_LIMIT: '500',
    }));
    ws = await WsTestClient.connect(server.wsUrl);
  });
  afterAll(async () => {
    ws.close();
    await server.close();
    await fake.close();
  });

  const upload = (bytes: number, name = 'notes.txt') => request(server.url).post('/api/files').attach('file', Buffer.alloc(bytes, 'a'), name);
  const uploaded = async (bytes: number): Promise<string> => (await upload(bytes).expect(201)).body.id as string;
  const storedBytes = () => server.app.get(FilesRepository).bytesOf('local');

  /** Everything a refused message could have left behind: chats, the chat's messages and settings, model requests. */
  async function footprint(chatId?: string) {
    const chats = (await request(server.url).get('/api/chats').expect(200)).body.chats as unknown[];
    const chat = chatId ? (await request(server.url).get(`/api/chats/${chatId}`).expect(200)).body : undefined;
    return { chats: chats.length, messages: chat?.messages.length, settings: chat?.settings, modelRequests: fake.requests.length };
  }

  /** Sends the frame, expects the error, and that nothing was written or sent to the model. */
  async function refused(frame: Record<string, unknown>, code: string, message: RegExp) {
    const before = await footprint(frame.chat_id as string | undefined);
    const id = `r${Math.random()}`;
    ws.send({ type: 'user_message', id, ...frame });
    const error = await ws.next((f) => f.id === id);
    expect(error).toMatchObject({ type: 'error', code });
    expect(error.message).toMatch(message);
    expect(await footprint(frame.chat_id as string | undefined)).toEqual(before);
  }

  async function answered(frame: Record<string, unknown>) {
    const id = `ok${Math.random()}`;
    ws.send({ type: 'user_message', id, ...frame });
    const frames = await ws.collect((f) => (f.type === 'agent_response_end' || f.type === 'error') && f.id === id);
    const end = frames[frames.length - 1];
    expect(end).toMatchObject({ type: 'agent_response_end', status: 'complete' });
    return { end, sent: fake.requests[fake.requests.length - 1].body };
  }

  it('refuses more files than MAX_ATTACHMENTS_PER_MESSAGE before reading any of them', async () => {
    const ids = [await uploaded(10), await uploaded(10), await uploaded(10)];
    await refused({ content: 'three files', attachments: ids }, 'limit_exceeded', /at most 2 files per message \(MAX_ATTACHMENTS_PER_MESSAGE\)/);
    // a 64 KiB frame naming a thousand ids is refused the same way
    const many = Array.from({ length: 1000 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
    await refused({ content: 'many files', attachments: many }, 'limit_exceeded', /MAX_ATTACHMENTS_PER_MESSAGE/);
  });

  it('refuses files over MAX_ATTACHMENT_BYTES_PER_TURN in all', async () => {
    const ids = [await uploaded(1600), await uploaded(1600)];
    await refused({ content: 'two big files', attachments: ids }, 'limit_exceeded', /3200 bytes; at most 3000 per message \(MAX_ATTACHMENT_BYTES_PER_TURN\)/);
  });

  it('counts attachments against CONTEXT_TOKENS: the newest message with its files and the system prompt must fit', async () => {
    const { end } = await answered({ content: 'a chat to continue' });
    const chatId = end.chat_id as string;
    const file = await uploaded(1000); // ~250 tokens
    // ~600 tokens of system prompt and ~250 of file: over 800; the options are not stored either
    await refused(
      { content: 'with a prompt', chat_id: chatId, attachments: [file], options: { system_prompt: 'be brief '.repeat(266) } },
      'limit_exceeded',
      /about \d+ tokens; at most 800 fit \(CONTEXT_TOKENS\)/,
    );
    // within every limit the files go to the model
    const second = await uploaded(1000);
    const { sent } = await answered({ content: 'two files that fit', chat_id: chatId, attachments: [file, second] });
    const last = sent.messages[sent.messages.length - 1].content as string;
    expect(last.startsWith('two files that fit')).toBe(true);
    expect(last.split('--- Attached file: notes.txt ---')).toHaveLength(3);
  });

  it('refuses an upload over FILE_QUOTA_BYTES with 429 limit_exceeded and stores nothing', async () => {
    const used = await storedBytes();
    const left = 10_000 - used;
    expect(left).toBeGreaterThan(1);
    const over = await upload(left + 1).expect(429);
    expect(over.body).toEqual({
      statusCode: 429,
      error: 'Too Many Requests',
      message: `file storage quota: ${used} of 10000 bytes used; this file needs ${left + 1} (FILE_QUOTA_BYTES)`,
    });
    expect(await storedBytes()).toBe(used);
    await upload(left).expect(201); // exactly the quota
    expect(await storedBytes()).toBe(10_000);
    await upload(1).expect(429);
  });

  it('refuses max_tokens over MAX_TOKENS_LIMIT (invalid_message), and sends one at the limit', async () => {
    await refused({ content: 'long answer', options: { max_tokens: 501 } }, 'invalid_message', /^options\.max_tokens: at most 500 \(MAX_TOKENS_LIMIT\)$/);
    const { sent } = await answered({ content: 'answer within the limit', options: { max_tokens: 500 } });
    expect(sent.max_tokens).toBe(500);
  });

  it('takes a model only from /api/models; another is invalid_message naming options.model', async () => {
    const offered = (await request(server.url).get('/api/models').expect(200)).body.models.map((m: { id: string }) => m.id);
    expect(offered).toEqual(['deepseek-v4-flash', 'deepseek-v4-pro']);
    await refused({ content: 'pricey model', options: { model: 'gpt-4-32k' } }, 'invalid_message', /^options\.model: "gpt-4-32k" is not offered here/);
    const { end, sent } = await answered({ content: 'an offered model', options: { model: 'deepseek-v4-pro' } });
    expect(sent.model).toBe('deepseek-v4-pro');
    // and in a chat that has one
    await refused({ content: 'switch', chat_id: end.chat_id, options: { model: 'other' } }, 'invalid_message', /options\.model/);
  });
});

describe('limits that hold: import (e2e)', () => {
  let fake: FakeDeepSeek;
  let server: RunningApp;
  let warnings: jest.SpyInstance;
  let errors: jest.SpyInstance;

  beforeAll(async () => {
    ({ fake, server } = await withFakeModel({ IMPORT_MAX_BYTES: '400000', IMPORT_MAX_MESSAGES: '40', IMPORTS_PER_HOUR: '3' }));
  });
  beforeEach(() => {
    warnings = jest.spyOn(Logger.prototype, 'warn');
    errors = jest.spyOn(Logger.prototype, 'error');
  });
  afterEach(() => jest.restoreAllMocks());
  afterAll(async () => {
    await server.close();
    await fake.close();
  });

  const chatCount = async () => ((await request(server.url).get('/api/chats').expect(200)).body.chats as unknown[]).length;
  const exportOf = (messages: { role: string; content: string }[]) => ({ format: 'chat-export', version: 1, title: 'Imported', messages });
  let imports = 0;

  it('an export far bigger than 100 KB imports back whole', async () => {
    const long = (word: string) => `${word} ${'x'.repeat(31_000)}`;
    const ws = await WsTestClient.connect(server.wsUrl);
    let chatId: string | undefined;
    for (const word of ['one', 'two', 'three', 'four']) {
      ws.send({ type: 'user_message', id: word, content: long(word), ...(chatId ? { chat_id: chatId } : {}) });
      chatId = (await ws.next((f) => f.type === 'agent_response_end' && f.id === word)).chat_id as string;
    }
    ws.close();
    const exported = await request(server.url).get(`/api/chats/${chatId}/export?format=json`).expect(200);
    expect(exported.text.length).toBeGreaterThan(124_000);
    const imported = await request(server.url).post('/api/chats/import').type('json').send(exported.text).expect(201);
    imports++;
    const copy = (await request(server.url).get(`/api/chats/${imported.body.id}`).expect(200)).body;
    expect(copy.messages.map((m: { content: string }) => m.content)).toEqual(JSON.parse(exported.text).messages.map((m: { content: string }) => m.content));
  });

  it('a body over IMPORT_MAX_BYTES is 413 JSON with one log line (no stack); nothing is written', async () => {
    const before = await chatCount();
    const res = await request(server.url)
      .post('/api/chats/import')
      .send(exportOf([{ role: 'user', content: 'x'.repeat(400_000) }]))
      .expect(413);
    expect(res.body).toEqual({ statusCode: 413, error: 'Payload Too Large', message: 'the import is over 400000 bytes (IMPORT_MAX_BYTES)' });
    expect(warnings.mock.calls).toEqual([[expect.stringMatching(/^import refused: body of \d+ bytes is over IMPORT_MAX_BYTES \(400000\)$/)]]);
    expect(errors).not.toHaveBeenCalled();
    expect(await chatCount()).toBe(before);
  });

  it('other routes keep the app-wide body limit, and a body over it is 413 too, not a 500', async () => {
    const res = await request(server.url)
      .patch('/api/chats/00000000-0000-4000-8000-000000000000')
      .send({ title: 'x'.repeat(200_000) })
      .expect(413);
    expect(res.body).toMatchObject({ statusCode: 413, error: 'Payload Too Large' });
    expect(warnings).toHaveBeenCalledTimes(1);
    expect(errors).not.toHaveBeenCalled();
  });

  it('more messages than IMPORT_MAX_MESSAGES is 413; nothing is written', async () => {
    const before = await chatCount();
    const messages = Array.from({ length: 41 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `m${i}` }));
    const res = await request(server.url).post('/api/chats/import').send(exportOf(messages)).expect(413);
    expect(res.body.message).toBe('the import has 41 messages; at most 40 (IMPORT_MAX_MESSAGES)');
    expect(await chatCount()).toBe(before);
    await request(server.url)
      .post('/api/chats/import')
      .send(exportOf(messages.slice(0, 40)))
      .expect(201);
    imports++;
  });

  it('at most IMPORTS_PER_HOUR imports: then 429 limit_exceeded; nothing is written', async () => {
    const small = exportOf([{ role: 'user', content: 'hello' }]);
    while (imports < 3) {
      await request(server.url).post('/api/chats/import').send(small).expect(201);
      imports++;
    }
    const before = await chatCount();
    const res = await request(server.url).post('/api/chats/import').send(small).expect(429);
    expect(res.body.message).toMatch(/^imports: at most 3 per hour \(IMPORTS_PER_HOUR\); try again in \d+ min$/);
    expect(await chatCount()).toBe(before);
    expect(fake.requests.length).toBe(4); // the four turns of the first test, no more
  });

  (usingPostgres() ? it : it.skip)("with Redis, IMPORTS_PER_HOUR counts one user's imports on every instance", async () => {
    const shared = {
      DATABASE_URL: tempDatabaseUrl(),
      REDIS_URL: TEST_REDIS_URL,
      REDIS_PREFIX: `chattest:${randomBytes(5).toString('hex')}:`,
      IMPORTS_PER_HOUR: '2',
    };
    const [a, b] = [await startApp(shared), await startApp(shared)];
    try {
      const small = exportOf([{ role: 'user', content: 'hello' }]);
      await request(a.url).post('/api/chats/import').send(small).expect(201);
      await request(b.url).post('/api/chats/import').send(small).expect(201);
      const refused = await request(a.url).post('/api/chats/import').send(small).expect(429);
      expect(refused.body.message).toMatch(/IMPORTS_PER_HOUR/);
      expect((await request(b.url).get('/api/chats').expect(200)).body.chats).toHaveLength(2);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

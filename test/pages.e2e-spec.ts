import request from 'supertest';
import { openDatabase } from '../src/storage/database.provider';
import { FakeDeepSeek } from './fakes/deepseek.fake';
import { type RunningApp, startApp, tempDatabaseUrl } from './support/app';
import { WsTestClient } from './support/ws-client';

describe('pages, JSON API, health and restarts (e2e)', () => {
  let fake: FakeDeepSeek;
  let server: RunningApp;
  const databaseUrl = tempDatabaseUrl();
  const settings = () => ({ DEEPSEEK_BASE_URL: fake.baseUrl, DEEPSEEK_API_KEY: 'test-key', DATABASE_URL: databaseUrl });

  beforeAll(async () => {
    fake = await FakeDeepSeek.start();
    server = await startApp(settings());
  });
  afterAll(async () => {
    await server?.close();
    await fake.close();
  });

  /** Runs one turn over the socket; resolves with the end frame. */
  async function chatTurn(content: string, chatId?: string) {
    const ws = await WsTestClient.connect(server.wsUrl);
    ws.send({ type: 'user_message', id: 't', content, ...(chatId ? { chat_id: chatId } : {}) });
    const end = await ws.nextOfType('agent_response_end');
    ws.close();
    return end;
  }

  it('redirects / to /chat', async () => {
    await request(server.url).get('/').expect(302).expect('Location', '/chat');
  });

  it('renders the new-chat page with the page hooks', async () => {
    const page = await request(server.url).get('/chat').expect(200).expect('Content-Type', /html/);
    expect(page.text).toMatch(/^<!doctype html>/i);
    for (const hook of ['data-chat-form', 'name="content"', 'data-send', 'data-stop', 'data-connection=', 'data-chat-list']) {
      expect(page.text).toContain(hook);
    }
    expect(page.headers.vary).toMatch(/HX-Request/i);
    expect(page.text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i); // no inline script
    const csp = page.headers['content-security-policy'];
    expect(csp).toMatch(/script-src 'self'(;|$)/);
    expect(csp).not.toContain('unsafe-inline');
  });

  it('renders a chat with its stored history, full page or HTMX partial', async () => {
    fake.enqueue({ kind: 'stream', reasoning: ['thinking <hard>'], content: ['**Bold** & ', '<b>raw</b>'] });
    const end = await chatTurn('Hello <there>');
    const path = `/chat/${end.chat_id}`;

    const full = await request(server.url).get(path).expect(200);
    expect(full.text).toMatch(/<html/i);
    expect(full.text).toContain(`href="/chat/${end.chat_id}"`);
    expect(full.text).toMatch(new RegExp(`data-message-id="${end.message_id}"[^>]*data-role="assistant"[^>]*data-status="complete"[^>]*data-seq="${end.seq}"`));
    // pieces of one read may share a frame: 2 frames (reasoning, content) at least, 3 at most
    expect([2, 3]).toContain(end.seq);
    expect(full.text).toContain('Hello &lt;there&gt;');
    expect(full.text).toContain('**Bold** &amp; &lt;b&gt;raw&lt;/b&gt;'); // escaped, rendered by the page script
    expect(full.text).toMatch(/<details[^>]*data-reasoning/);

    const partial = await request(server.url).get(path).set('HX-Request', 'true').expect(200);
    expect(partial.text).not.toMatch(/<html/i);
    expect(partial.text).toContain(`data-message-id="${end.message_id}"`);
    expect(partial.headers.vary).toMatch(/HX-Request/i);

    const restore = await request(server.url).get(path).set('HX-Request', 'true').set('HX-History-Restore-Request', 'true');
    expect(restore.text).toMatch(/<html/i);
    const asked = await request(server.url).get(path).set('HX-Request', 'true').set('HX-Request-Type', 'full');
    expect(asked.text).toMatch(/<html/i);
  });

  it.each([
    ['an unknown chat', '/chat/00000000-0000-4000-8000-000000000000'],
    ['a malformed uuid', '/chat/not-a-uuid'],
  ])('answers %s with the 404 page', async (_name, path) => {
    const page = await request(server.url).get(path).set('Accept', 'text/html').expect(404).expect('Content-Type', /html/);
    expect(page.text).toMatch(/not found/i);
  });

  it('answers unknown API chats with a JSON 404', async () => {
    for (const id of ['00000000-0000-4000-8000-000000000000', 'nope']) {
      const res = await request(server.url).get(`/api/chats/${id}`).expect(404);
      expect(res.body).toEqual({ statusCode: 404, error: 'Not Found', message: expect.any(String) });
    }
  });

  it('renames and deletes a chat', async () => {
    const end = await chatTurn('To be renamed');
    const renamed = await request(server.url).patch(`/api/chats/${end.chat_id}`).send({ title: 'New name' }).expect(200);
    expect(renamed.body).toEqual({ id: end.chat_id, title: 'New name', created_at: expect.any(String), updated_at: expect.any(String) });
    await request(server.url).patch(`/api/chats/${end.chat_id}`).send({ title: 5 }).expect(400);
    await request(server.url).delete(`/api/chats/${end.chat_id}`).expect(204);
    await request(server.url).get(`/api/chats/${end.chat_id}`).expect(404);
    const list = await request(server.url).get('/api/chats').expect(200);
    expect(list.body.chats.map((c: { id: string }) => c.id)).not.toContain(end.chat_id);
  });

  it('lists chats newest first with the protocol fields', async () => {
    const a = await chatTurn('older chat');
    const b = await chatTurn('newer chat');
    const { body } = await request(server.url).get('/api/chats').expect(200);
    const ids = body.chats.map((c: { id: string }) => c.id);
    expect(ids.indexOf(b.chat_id)).toBeLessThan(ids.indexOf(a.chat_id));
    expect(Object.keys(body.chats[0]).sort()).toEqual(['created_at', 'id', 'title', 'updated_at']);
  });

  it('serves health and the browser libraries locally', async () => {
    const health = await request(server.url).get('/health').expect(200);
    expect(health.body.status).toBe('ok');
    for (const file of [
      '/vendor/htmx.min.js',
      '/vendor/marked.umd.js',
      '/vendor/purify.min.js',
      '/vendor/highlight.min.js',
      '/vendor/highlight-github-dark.min.css',
      '/static/chat.js',
      '/static/chat.css',
    ]) {
      await request(server.url).get(file).expect(200);
    }
  });

  it('keeps chats across a restart, and marks answers left streaming by a crash as interrupted', async () => {
    const end = await chatTurn('Remember me');
    // A crash mid-answer: a row left `streaming` with its last snapshot.
    const db = await openDatabase(databaseUrl);
    await db
      .insertInto('messages')
      .values({
        id: '11111111-1111-4111-8111-111111111111',
        chat_id: end.chat_id,
        role: 'assistant',
        content: 'half an ans',
        reasoning: null,
        status: 'streaming',
        model: 'm',
        usage: null,
        error_code: null,
        request_id: null,
        seq: 3,
        created_at: '2999-01-01T00:00:00.000Z',
        updated_at: '2999-01-01T00:00:00.000Z',
        replaced_by: null,
        previous_versions: null,
        attachments: null,
      })
      .execute();
    await db.destroy();
    await server.close();
    server = await startApp(settings());
    const { body } = await request(server.url).get(`/api/chats/${end.chat_id}`).expect(200);
    expect(body.messages.map((m: { role: string; content: string; status: string }) => [m.role, m.content, m.status])).toEqual([
      ['user', 'Remember me', 'complete'],
      ['assistant', end.content, 'complete'],
      ['assistant', 'half an ans', 'interrupted'],
    ]);
    const page = await request(server.url).get(`/chat/${end.chat_id}`).expect(200);
    expect(page.text).toContain('Remember me');
  });

  it('on shutdown ends running answers as interrupted, after the drain limit', async () => {
    const drained = await startApp({ ...settings(), DATABASE_URL: tempDatabaseUrl(), DRAIN_TIMEOUT_MS: '200' });
    fake.setDefault({ kind: 'stream', content: Array.from({ length: 200 }, (_, i) => `${i} `), delayMs: 20 });
    const ws = await WsTestClient.connect(drained.wsUrl);
    try {
      ws.send({ type: 'user_message', id: 'd', content: 'long' });
      await ws.next((f) => f.type === 'agent_response' && f.seq === 2);
      const closing = drained.close();
      const end = await ws.nextOfType('agent_response_end', 3000);
      expect(end.status).toBe('interrupted');
      expect(end.content.length).toBeGreaterThan(0);
      await closing;
    } finally {
      fake.setDefault(undefined as never);
    }
  });
});

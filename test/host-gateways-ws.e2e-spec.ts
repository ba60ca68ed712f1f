import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import WebSocket from 'ws';
import { FakeDeepSeek } from './fakes/deepseek.fake';
import { compileHost, installPackedLibrary } from './support/packed-library';
import { ServerProcess } from './support/server-process';
import { type AnyFrame, upgradeStatus, WsTestClient } from './support/ws-client';

const HOST = join(__dirname, 'hosts', '16-gateways-ws');

/** A port free right now (the sample's gateway port is a constant: the host reads EVENTS_PORT instead). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** What the sample's own client does: send `{event:'events', data}` and read the answers. */
async function sampleEvents(url: string, count: number): Promise<unknown[]> {
  const socket = new WebSocket(url);
  const frames: unknown[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.on('message', (data) => {
        frames.push(JSON.parse(String(data)));
        if (frames.length === count) resolve();
      });
      socket.once('open', () => socket.send(JSON.stringify({ event: 'events', data: 'test' })));
    });
    return frames;
  } finally {
    socket.terminate();
  }
}

/**
 * Nest's sample 16-gateways-ws as a host (test/hosts/16-gateways-ws: its `WsAdapter` gateway on a
 * port of its own), built against the packed library with the chat mounted under /assistant in
 * accounts mode. The sample's adapter is set before mounting the chat in one process and after it in
 * the other: each socket keeps its own frames and checks either way.
 */
describe('Nest sample 16-gateways-ws with the chat mounted (e2e, packed library)', () => {
  let work: string;
  let fake: FakeDeepSeek;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'chat-host16-'));
    const app = join(work, 'host');
    installPackedLibrary(app);
    for (const entry of ['src', 'tsconfig.json', 'package.json']) cpSync(join(HOST, entry), join(app, entry), { recursive: true });
    compileHost(app);
    fake = await FakeDeepSeek.start();
  }, 240_000);

  afterAll(async () => {
    await fake?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  describe.each(['before', 'after'])('WsAdapter set %s mounting the chat', (order) => {
    let host: ServerProcess | undefined;
    let eventsUrl = '';
    let chatWs = '';

    beforeAll(async () => {
      const eventsPort = await freePort();
      host = await ServerProcess.start(
        {
          WS_ADAPTER: order,
          EVENTS_PORT: String(eventsPort),
          CHAT_DATABASE_URL: `sqlite:${join(work, `chat-${order}.db`)}`,
          CHAT_DEEPSEEK_BASE_URL: fake.baseUrl,
          CHAT_DEEPSEEK_API_KEY: 'test-key',
          CHAT_AUTH_MODE: 'local',
        },
        join(work, 'host', 'dist', 'main.js'),
        join(work, 'host'),
      );
      eventsUrl = `ws://127.0.0.1:${eventsPort}`;
      chatWs = `${host.url.replace('http', 'ws')}/assistant/ws`;
    }, 60_000);

    afterAll(async () => {
      if (host && host.child.exitCode === null) await host.kill('SIGTERM');
    });

    it("the sample's gateway answers its own {event, data} frames on its port: no connected frame, no upgrade check", async () => {
      expect(await sampleEvents(eventsUrl, 3)).toEqual([
        { event: 'events', data: 1 },
        { event: 'events', data: 2 },
        { event: 'events', data: 3 },
      ]);
      // No session, no Origin check there: the chat's upgrade check is the chat's path only.
      expect(await upgradeStatus(eventsUrl, { origin: 'https://elsewhere.example' })).toBe(101);
    });

    it('our socket refuses an upgrade without a session, and streams a chat turn with one', async () => {
      expect(await upgradeStatus(chatWs, {})).toBe(401);
      const signup = await request(host!.url)
        .post('/assistant/auth/signup')
        .send({ username: `user-${order}`, password: 'correct horse battery' })
        .expect(201);
      const cookie = String([signup.headers['set-cookie']].flat()[0]).split(';')[0];

      const ws = await WsTestClient.connect(chatWs, { headers: { cookie } });
      expect(ws.frames[0]).toMatchObject({ type: 'connected', protocol: 1 });
      fake.enqueue({ kind: 'stream', content: ['Gateways ', 'coexist.'] });
      ws.send({ type: 'user_message', id: 'q1', content: 'Do they?' });
      const frames: AnyFrame[] = await ws.collect((f) => f.type === 'agent_response_end' || f.type === 'error');
      expect(frames[frames.length - 1]).toMatchObject({ type: 'agent_response_end', status: 'complete', content: 'Gateways coexist.' });
      // The sample's frame shape means nothing on our socket: an error frame, the socket stays.
      ws.send({ event: 'events', data: 'test' });
      expect(await ws.next((f) => f.type === 'error')).toMatchObject({ code: 'invalid_message', field: 'type' });
      ws.socket.terminate();
    });

    it('the default /ws path of the app is not ours (nothing serves it)', async () => {
      expect(await upgradeStatus(`${host!.url.replace('http', 'ws')}/ws`, {})).toBe(0);
    });
  });
});

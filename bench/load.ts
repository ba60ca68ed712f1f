/**
 * The load: WebSocket clients (and an HTTP timer) in their own process, driven by the orchestrator.
 * Speaks the wire contract's frames to either target: the real server or the bare relay (which
 * answers the same `user_message` → `agent_response`* → `agent_response_end`).
 *
 * Every piece the fake model sends is stamped `[n|sentAtMs]`, so per piece the client knows when it
 * left the model: one-way latency = received − sent, and added gap = (received − previous received)
 * − (sent − previous sent), i.e. how much the path stretched the model's own spacing.
 */
import * as http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import WebSocket from 'ws';
import { nowMs, PIECE_MARK, Samples, serve, sleep, summarize, turnPrompt } from './lib';

interface TurnResult {
  ok: boolean;
  error?: string;
}

interface Turn {
  id: string;
  pool: Pool;
  expectedPieces: number;
  tSend: number;
  tFirst: number;
  firstSent: number;
  lastSent: number;
  lastRecv: number;
  nextPiece: number;
  pieces: number;
  frames: number;
  lastSeq: number;
  error?: string;
  timer?: NodeJS.Timeout;
  resolve: (result: TurnResult) => void;
}

interface Client {
  ws: WebSocket;
  turn?: Turn;
  /** The chat its last turn ran in (a follow-up turn goes there: `run` with `followUp`). */
  chatId?: string;
  /** A viewer: frames of this chat (sent by another client's turns) are counted into `pool`. */
  watch?: { chatId: string; pool: Pool };
  /** Waiting for a frame (e.g. `subscribed`, the first replayed frame). */
  waiter?: (frame: any, at: number) => boolean;
}

/** Samples of one measurement (e.g. "streams:server"), pooled across rounds. */
class Pool {
  ttfp = new Samples();
  turn = new Samples();
  inbound = new Samples();
  outbound = new Samples();
  latency = new Samples();
  gap = new Samples();
  turns = 0;
  failed = 0;
  errors: Record<string, number> = {};
  pieces = 0;
  lost = 0;
  outOfOrder = 0;
  seqGaps = 0;
  frames = 0;
  wallMs = 0;

  summary() {
    return {
      turns: this.turns,
      failed: this.failed,
      errors: this.errors,
      pieces: this.pieces,
      frames: this.frames,
      lost: this.lost,
      outOfOrder: this.outOfOrder,
      seqGaps: this.seqGaps,
      wallMs: this.wallMs,
      ttfp: this.ttfp.summary(),
      turn: this.turn.summary(),
      inbound: this.inbound.summary(),
      outbound: this.outbound.summary(),
      latency: this.latency.summary(),
      gap: this.gap.summary(),
    };
  }
}

const groups = new Map<string, Client[]>();
const pools = new Map<string, Pool>();
let turnCounter = 0;
const eld = monitorEventLoopDelay({ resolution: 5 });
eld.enable();

function pool(key: string): Pool {
  let p = pools.get(key);
  if (!p) pools.set(key, (p = new Pool()));
  return p;
}

// ---- clients ---------------------------------------------------------------------------------

function connectOne(url: string): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 30_000 });
    const client: Client = { ws };
    let connected = false;
    ws.on('message', (data) => {
      const at = nowMs();
      const frame = JSON.parse(String(data));
      if (!connected) {
        if (frame.type === 'connected') {
          connected = true;
          resolve(client);
        }
        return;
      }
      if (client.waiter?.(frame, at)) client.waiter = undefined;
      if (client.watch && frame.chat_id === client.watch.chatId) onWatched(client.watch.pool, frame, at);
      if (client.turn) {
        if (frame.id === client.turn.id && typeof frame.chat_id === 'string') client.chatId = frame.chat_id;
        onFrame(client.turn, frame, at);
      }
    });
    ws.on('error', (error) => {
      if (!connected) reject(error);
    });
    ws.on('close', () => {
      if (!connected) reject(new Error('closed before connected'));
      const turn = client.turn;
      if (turn) endTurn(client, turn, 'socket closed');
    });
  });
}

function onFrame(turn: Turn, frame: any, at: number): void {
  if (frame.id !== turn.id) return;
  switch (frame.type) {
    case 'agent_response': {
      turn.frames++;
      if (frame.seq !== turn.lastSeq + 1) turn.pool.seqGaps++;
      turn.lastSeq = frame.seq;
      if (turn.tFirst === 0) turn.tFirst = at;
      const text = String(frame.content);
      PIECE_MARK.lastIndex = 0;
      let match: RegExpExecArray | null;
      while ((match = PIECE_MARK.exec(text))) {
        const n = Number(match[1]);
        const sent = Number(match[2]);
        if (n !== turn.nextPiece) turn.pool.outOfOrder++;
        turn.nextPiece = n + 1;
        turn.pieces++;
        turn.pool.latency.push(at - sent);
        if (turn.firstSent === 0) turn.firstSent = sent;
        else turn.pool.gap.push(at - turn.lastRecv - (sent - turn.lastSent));
        turn.lastSent = sent;
        turn.lastRecv = at;
      }
      return;
    }
    case 'agent_response_end': {
      finishTurn(turn, at, frame.status === 'complete' ? undefined : `status ${frame.status}`);
      return;
    }
    case 'error':
      turn.error = String(frame.code);
      // An error before the turn started (no message) gets no agent_response_end.
      if (!frame.message_id) finishTurn(turn, at, turn.error);
      return;
  }
}

/** A viewer's frame: piece latency (model send → this viewer), pieces and frames; an end counts a turn. */
function onWatched(p: Pool, frame: any, at: number): void {
  if (frame.type === 'agent_response_end') {
    p.turns++;
    return;
  }
  if (frame.type !== 'agent_response') return;
  p.frames++;
  PIECE_MARK.lastIndex = 0;
  let match: RegExpExecArray | null;
  while ((match = PIECE_MARK.exec(String(frame.content)))) {
    p.pieces++;
    p.latency.push(at - Number(match[2]));
  }
}

/** Resolves with the first frame `match` accepts (and when it arrived), or rejects after `timeoutMs`. */
function waitFrame(client: Client, match: (frame: any) => boolean, timeoutMs = 30_000): Promise<{ frame: any; at: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.waiter = undefined;
      reject(new Error('no such frame in time'));
    }, timeoutMs);
    client.waiter = (frame, at) => {
      if (!match(frame)) return false;
      clearTimeout(timer);
      resolve({ frame, at });
      return true;
    };
  });
}

const owners = new WeakMap<Turn, Client>();

function finishTurn(turn: Turn, at: number, error?: string): void {
  const client = owners.get(turn);
  if (!client || client.turn !== turn) return;
  const p = turn.pool;
  p.turns++;
  p.frames += turn.frames;
  p.pieces += turn.pieces;
  p.lost += Math.max(0, turn.expectedPieces - turn.pieces);
  if (error || turn.error) {
    p.failed++;
    const code = error ?? turn.error ?? 'unknown';
    p.errors[code] = (p.errors[code] ?? 0) + 1;
  } else {
    p.turn.push(at - turn.tSend);
  }
  if (turn.tFirst) {
    p.ttfp.push(turn.tFirst - turn.tSend);
    p.inbound.push(turn.firstSent - turn.tSend);
    p.outbound.push(turn.tFirst - turn.firstSent);
  }
  endTurn(client, turn, undefined);
}

function endTurn(client: Client, turn: Turn, error: string | undefined): void {
  if (client.turn !== turn) return;
  client.turn = undefined;
  clearTimeout(turn.timer);
  if (error) {
    turn.pool.turns++;
    turn.pool.failed++;
    turn.pool.errors[error] = (turn.pool.errors[error] ?? 0) + 1;
  }
  turn.resolve({ ok: !error && !turn.error, error: error ?? turn.error });
}

function startTurn(client: Client, p: Pool, pieces: number, interval: number, followUp = false): Promise<TurnResult> {
  return new Promise((resolve) => {
    const turn: Turn = {
      id: `t${++turnCounter}`,
      pool: p,
      expectedPieces: pieces,
      tSend: 0,
      tFirst: 0,
      firstSent: 0,
      lastSent: 0,
      lastRecv: 0,
      nextPiece: 0,
      pieces: 0,
      frames: 0,
      lastSeq: 0,
      resolve,
    };
    owners.set(turn, client);
    client.turn = turn;
    turn.timer = setTimeout(() => endTurn(client, turn, 'timeout'), pieces * interval + 120_000);
    turn.tSend = nowMs();
    const chat = followUp && client.chatId ? { chat_id: client.chatId } : {};
    client.ws.send(JSON.stringify({ type: 'user_message', id: turn.id, content: turnPrompt(pieces, interval), ...chat }));
  });
}

// ---- commands --------------------------------------------------------------------------------

interface ConnectArgs {
  group: string;
  url: string;
  n: number;
  /** Connections opened at once. */
  batch?: number;
}

async function connect({ group, url, n, batch = 200 }: ConnectArgs) {
  const started = nowMs();
  const clients = groups.get(group) ?? [];
  groups.set(group, clients);
  let failed = 0;
  let firstError = '';
  for (let i = 0; i < n; i += batch) {
    const results = await Promise.allSettled(Array.from({ length: Math.min(batch, n - i) }, () => connectOne(url)));
    for (const result of results) {
      if (result.status === 'fulfilled') clients.push(result.value);
      else {
        failed++;
        firstError ||= String(result.reason?.message ?? result.reason);
      }
    }
    if (failed > 0 && failed >= Math.max(50, n / 20)) break;
  }
  return { opened: clients.length, failed, firstError, ms: nowMs() - started };
}

async function close({ group }: { group: string }) {
  const clients = groups.get(group) ?? [];
  groups.delete(group);
  await Promise.all(
    clients.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.ws.readyState === WebSocket.CLOSED) return resolve();
          const timer = setTimeout(() => {
            c.ws.terminate();
            resolve();
          }, 3000);
          c.ws.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
          c.ws.close();
        }),
    ),
  );
  return { closed: clients.length };
}

interface RunArgs {
  group: string;
  pool: string;
  pieces: number;
  interval: number;
  /** Turns start spread at random over this many ms (0 = all at once). */
  rampMs?: number;
  /** Turns per client, one after another. */
  turns?: number;
  /** Pause between a client's turns. */
  pauseMs?: number;
  /** Each turn goes to the chat of the client's previous turn (viewers may watch it), not a new chat. */
  followUp?: boolean;
}

/** Every client of the group runs `turns` turns; resolves when all ended. */
async function run({ group, pool: key, pieces, interval, rampMs = 0, turns = 1, pauseMs = 0, followUp = false }: RunArgs) {
  const clients = groups.get(group) ?? [];
  const p = pool(key);
  eld.reset();
  const started = nowMs();
  await Promise.all(
    clients.map(async (client) => {
      if (rampMs > 0) await sleep(Math.random() * rampMs);
      for (let i = 0; i < turns; i++) {
        if (client.ws.readyState !== WebSocket.OPEN) return;
        await startTurn(client, p, pieces, interval, followUp);
        if (pauseMs > 0) await sleep(pauseMs);
      }
    }),
  );
  const wallMs = nowMs() - started;
  p.wallMs += wallMs;
  return { wallMs, clients: clients.length, clientEldP99: eld.percentile(99) / 1e6, clientEldMax: eld.max / 1e6 };
}

async function timeHttp({ url, n, warmup = 10, headers = {} }: { url: string; n: number; warmup?: number; headers?: Record<string, string> }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const samples = new Samples();
  let bytes = 0;
  const statuses: Record<string, number> = {};
  for (let i = 0; i < warmup + n; i++) {
    const started = nowMs();
    const { status, size } = await new Promise<{ status: number; size: number }>((resolve, reject) => {
      const req = http.get(url, { agent, headers }, (res) => {
        let size = 0;
        res.on('data', (chunk: Buffer) => (size += chunk.length));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, size }));
      });
      req.on('error', reject);
    });
    if (i < warmup) continue;
    samples.push(nowMs() - started);
    bytes = size;
    statuses[status] = (statuses[status] ?? 0) + 1;
  }
  agent.destroy();
  return { time: samples.summary(), bytes, statuses };
}

/** The chat of each client's last turn, in the group's order. */
const chatIds = ({ group }: { group: string }) => (groups.get(group) ?? []).map((c) => c.chatId ?? '');

/** Client i of `group` watches `chats[i]` (subscribe, `subscribed` awaited); its frames count into `pool`. */
async function watch({ group, chats, pool: key }: { group: string; chats: string[]; pool: string }) {
  const clients = groups.get(group) ?? [];
  const p = pool(key);
  const started = nowMs();
  await Promise.all(
    clients.map(async (client, i) => {
      const chatId = chats[i];
      if (!chatId) return;
      const subscribed = waitFrame(client, (f) => f.type === 'subscribed' && f.chat_id === chatId);
      client.ws.send(JSON.stringify({ type: 'subscribe', id: `w${i}`, chat_id: chatId }));
      await subscribed;
      client.watch = { chatId, pool: p };
    }),
  );
  return { watching: clients.filter((c) => c.watch).length, ms: nowMs() - started };
}

/**
 * `resume` time to the first replayed frame: a client on `genUrl` starts an answer of `pieces` pieces;
 * once `afterMs` of it has streamed, a client on `resumeUrl` (another instance, or the same server)
 * sends `resume {after_seq: 0}` and times its first frame of that message. `n` times, one after another.
 */
async function resumeProbe({
  genUrl,
  resumeUrl,
  n,
  pieces,
  interval,
  afterMs,
}: {
  genUrl: string;
  resumeUrl: string;
  n: number;
  pieces: number;
  interval: number;
  afterMs: number;
}) {
  const gen = await connectOne(genUrl);
  const viewer = await connectOne(resumeUrl);
  const samples = new Samples();
  const replayedSeqs: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const id = `resume-${i}`;
      const first = waitFrame(gen, (f) => f.id === id && f.type === 'agent_response');
      gen.ws.send(JSON.stringify({ type: 'user_message', id, content: turnPrompt(pieces, interval) }));
      const { frame } = await first;
      const ended = waitFrame(gen, (f) => f.id === id && f.type === 'agent_response_end', pieces * interval + 30_000);
      await sleep(afterMs);
      const replayed = waitFrame(viewer, (f) => f.message_id === frame.message_id && typeof f.seq === 'number');
      const sentAt = nowMs();
      viewer.ws.send(JSON.stringify({ type: 'resume', id: `r${i}`, message_id: frame.message_id, after_seq: 0 }));
      const { frame: got, at } = await replayed;
      samples.push(at - sentAt);
      replayedSeqs.push(got.seq);
      await ended;
    }
  } finally {
    gen.ws.close();
    viewer.ws.close();
  }
  return { time: samples.summary(), firstSeq: summarize(replayedSeqs) };
}

serve({
  connect,
  chatIds,
  watch,
  resumeProbe,
  close,
  run,
  summary: ({ pool: key }: { pool: string }) => pool(key).summary(),
  http: timeHttp,
  /** Raw gap samples, for a histogram. */
  gapHistogram: ({ pool: key, edges }: { pool: string; edges: number[] }) => {
    const counts = new Array(edges.length + 1).fill(0);
    for (const g of pool(key).gap.values()) {
      let i = 0;
      while (i < edges.length && g > edges[i]) i++;
      counts[i]++;
    }
    return counts;
  },
  ping: () => true,
});

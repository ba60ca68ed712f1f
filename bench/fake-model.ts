/**
 * A lean OpenAI/DeepSeek-compatible model on loopback, in its own process. It streams real SSE
 * chunks (`data: {chat.completion.chunk}`, the usage chunk, `data: [DONE]`) shaped like DeepSeek's,
 * with every piece stamped `[n|sentAtMs]` (CLOCK_MONOTONIC), so clients can tell exactly what the
 * path between model and browser added.
 *
 * The answer is read from the last user message: `pieces=N interval=MS` (defaults 50 and 20).
 * The first piece goes out with the role chunk at once; the others follow every `interval` ms on
 * a 1 ms timer wheel shared by all streams (one timer for thousands of streams, no drift: each
 * piece is due `interval` after the previous one was due, whenever it actually went out).
 */
import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { nowMs, serve } from './lib';

interface Stream {
  res: http.ServerResponse;
  prefix: string;
  pieces: number;
  interval: number;
  sent: number;
  gone: boolean;
  wantsUsage: boolean;
  suffixId: string;
  created: number;
  model: string;
}

const stats = { requests: 0, streams: 0, open: 0, pieces: 0, aborted: 0, lateMax: 0, lateSum: 0 };
const eld = monitorEventLoopDelay({ resolution: 5 });
eld.enable();

// ---- timer wheel: slot per ms --------------------------------------------------------------

const wheel = new Map<number, Stream[]>();
let cursor = Math.floor(nowMs());

function schedule(stream: Stream, dueMs: number): void {
  const slot = Math.ceil(dueMs);
  let list = wheel.get(slot);
  if (!list) wheel.set(slot, (list = []));
  list.push(stream);
}

function tick(): void {
  const now = nowMs();
  const until = Math.floor(now);
  for (; cursor <= until; cursor++) {
    const list = wheel.get(cursor);
    if (!list) continue;
    wheel.delete(cursor);
    for (const stream of list) {
      if (stream.gone) continue;
      const late = now - cursor;
      stats.lateSum += late;
      if (late > stats.lateMax) stats.lateMax = late;
      emit(stream);
      if (stream.sent < stream.pieces) schedule(stream, cursor + stream.interval);
      else finish(stream);
    }
  }
}
setInterval(tick, 1);

// ---- SSE -----------------------------------------------------------------------------------

function pieceChunk(stream: Stream): string {
  const n = stream.sent++;
  stats.pieces++;
  return `${stream.prefix}"content":"[${n}|${nowMs().toFixed(3)}] "},"logprobs":null,"finish_reason":null}]}\n\n`;
}

function emit(stream: Stream): void {
  stream.res.write(pieceChunk(stream));
}

function finish(stream: Stream): void {
  const head = `data: {"id":"${stream.suffixId}","object":"chat.completion.chunk","created":${stream.created},"model":"${stream.model}","system_fingerprint":"fp_bench"`;
  let out = `${head},"choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"stop"}]}\n\n`;
  if (stream.wantsUsage) {
    const completion = stream.pieces * 6;
    out += `${head},"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":${completion},"total_tokens":${12 + completion},"prompt_tokens_details":{"cached_tokens":0},"prompt_cache_hit_tokens":0,"prompt_cache_miss_tokens":12}}\n\n`;
  }
  out += 'data: [DONE]\n\n';
  stream.res.end(out);
  stream.gone = true;
}

function lastUserText(body: any): string {
  const messages: any[] = Array.isArray(body?.messages) ? body.messages : [];
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i]?.role === 'user' && typeof messages[i].content === 'string') return messages[i].content;
  }
  return '';
}

function handle(req: http.IncomingMessage, res: http.ServerResponse, raw: string): void {
  const path = (req.url ?? '/').split('?')[0].replace(/\/+$/, '');
  if (req.method === 'GET' && (path === '/models' || path === '/v1/models')) {
    const body = JSON.stringify({ object: 'list', data: [{ id: 'deepseek-v4-flash', object: 'model', owned_by: 'bench' }] });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  if (req.method !== 'POST' || (path !== '/chat/completions' && path !== '/v1/chat/completions')) {
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end('{"error":{"message":"Not Found","type":"invalid_request_error","param":null,"code":null}}');
    return;
  }
  stats.requests++;
  let body: any;
  try {
    body = JSON.parse(raw);
  } catch {
    res.writeHead(400, { 'Content-Type': 'application/json' });
    res.end('{"error":{"message":"bad json","type":"invalid_request_error","param":null,"code":null}}');
    return;
  }
  const text = lastUserText(body);
  const pieces = Math.max(1, Number(/pieces=(\d+)/.exec(text)?.[1] ?? 50));
  const interval = Math.max(1, Number(/interval=(\d+)/.exec(text)?.[1] ?? 20));
  const id = randomUUID();
  const created = Math.floor(Date.now() / 1000);
  const model = typeof body?.model === 'string' ? body.model.replace(/[^\w.:-]/g, '') : 'deepseek-v4-flash';
  const stream: Stream = {
    res,
    prefix: `data: {"id":"${id}","object":"chat.completion.chunk","created":${created},"model":"${model}","system_fingerprint":"fp_bench","choices":[{"index":0,"delta":{`,
    pieces,
    interval,
    sent: 0,
    gone: false,
    wantsUsage: body?.stream_options?.include_usage === true,
    suffixId: id,
    created,
    model,
  };
  stats.streams++;
  stats.open++;
  res.on('close', () => {
    stats.open--;
    if (!stream.gone) stats.aborted++;
    stream.gone = true;
  });
  res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache' });
  const role = `${stream.prefix}"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}\n\n`;
  res.write(role + pieceChunk(stream));
  if (stream.sent >= pieces) finish(stream);
  else schedule(stream, nowMs() + interval);
}

const server = http.createServer((req, res) => {
  const parts: Buffer[] = [];
  req.on('data', (chunk: Buffer) => parts.push(chunk));
  req.on('end', () => handle(req, res, Buffer.concat(parts).toString('utf8')));
});
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;
server.maxHeadersCount = 100;

const listening = new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));

serve({
  url: async () => `http://127.0.0.1:${await listening}`,
  stats: () => ({
    ...stats,
    lateMean: stats.pieces ? stats.lateSum / stats.pieces : 0,
    eldP99: eld.percentile(99) / 1e6,
  }),
  reset: () => {
    stats.lateMax = 0;
    stats.lateSum = 0;
    stats.pieces = 0;
    stats.streams = 0;
    stats.aborted = 0;
    eld.reset();
  },
});

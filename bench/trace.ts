/**
 * `npm run bench -- --trace`: preloaded into each server (after probe.js), it stamps where a
 * `user_message` turn is at each step, from the moment ws hands the server the frame: the gateway
 * method, the model request (made, given a socket, written, flushed), the group commit, each frame
 * sent, the model's response and first data. It wraps library and app functions from the outside
 * (prototype methods), so the app is the one measured; the wrappers cost a little, so a traced run's
 * latencies are not the report's figures. Also preloaded into the bare relay (same wrappers: ws, http),
 * as the floor. Steps are written to BENCH_TRACE_DIR/<BENCH_TRACE_NAME>-<pid>.json.
 */
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { nowMs } from './lib';
import type * as Http from 'node:http';
import type * as Net from 'node:net';

type Fn = (...args: unknown[]) => unknown;
type Turn = Record<string, number>;

const root = process.cwd();
const load = createRequire(join(root, 'package.json'));
const turns: Turn[] = [];
let current: (Turn & { at: number }) | undefined;
const fakePort = Number(new URL(process.env.DEEPSEEK_BASE_URL ?? process.env.UPSTREAM ?? 'http://127.0.0.1:1').port);

/** The first time this turn reaches `step`, in ms since the server got the frame. */
function mark(step: string): void {
  if (current && current[step] === undefined) current[step] = nowMs() - current.at;
}
// A module of one's own (BENCH_PRELOAD, loaded after this one) can add steps: `globalThis.benchMark('step')`.
(globalThis as { benchMark?: (step: string) => void }).benchMark = mark;

/** Replaces `target[name]` with a wrapper calling `before` first; keeps decorator metadata. */
function wrap(target: Record<string, unknown>, name: string, before: (self: unknown, args: unknown[]) => void): void {
  const original = target[name] as Fn | undefined;
  if (typeof original !== 'function') return;
  const wrapper = function (this: unknown, ...args: unknown[]) {
    before(this, args);
    return original.apply(this, args);
  };
  const reflect = Reflect as unknown as {
    getMetadataKeys?: (t: object) => unknown[];
    getMetadata: (k: unknown, t: object) => unknown;
    defineMetadata: (k: unknown, v: unknown, t: object) => void;
  };
  for (const key of reflect.getMetadataKeys?.(original) ?? []) reflect.defineMetadata(key, reflect.getMetadata(key, original), wrapper);
  Object.defineProperty(target, name, { value: wrapper, writable: true, configurable: true });
}

function appModule(path: string): Record<string, { prototype: Record<string, unknown> }> | undefined {
  try {
    return load(join(root, 'dist', path)) as Record<string, { prototype: Record<string, unknown> }>;
  } catch {
    return undefined;
  }
}

// The modules themselves (an `import * as` namespace is a frozen copy).
const http = load('node:http') as typeof Http;
const net = load('node:net') as typeof Net;
load('reflect-metadata');
// The app's ws and @nestjs/platform-ws's own copy (the server's sockets come from the latter).
const wsCopies = new Set<{ prototype: Record<string, unknown> }>([load('ws').WebSocket]);
try {
  wsCopies.add(createRequire(load.resolve('@nestjs/platform-ws'))('ws').WebSocket);
} catch {
  // one copy only
}
for (const WebSocket of wsCopies) {
  wrap(WebSocket.prototype, 'emit', (_self, [event, data]) => {
    if (event === 'message' && String(data).includes('"user_message"')) {
      current = { at: nowMs() };
      turns.push(current);
    }
  });
  wrap(WebSocket.prototype, 'send', (_self, [data]) => {
    const type = /"type":"(\w+)"/.exec(String(data))?.[1];
    if (type) mark(`frame ${type} sent`);
  });
}
wrap(http as unknown as Record<string, unknown>, 'request', () => mark('model request made'));
wrap(http.ClientRequest.prototype as unknown as Record<string, unknown>, 'emit', (_self, [event]) => {
  if (event === 'socket') mark('model request has a socket');
  if (event === 'finish') mark('model request flushed');
  if (event === 'response') mark('model response headers');
});
wrap(http.IncomingMessage.prototype as unknown as Record<string, unknown>, 'emit', (_self, [event, chunk]) => {
  if (event !== 'data' || !current) return;
  mark('model response data');
  // The fake model stamps each piece with its send time on the same clock (CLOCK_MONOTONIC).
  const sentAt = /\[\d+\|(\d+\.\d+)\]/.exec(String(chunk))?.[1];
  if (sentAt && current['model sent its first piece'] === undefined) current['model sent its first piece'] = Number(sentAt) - current.at;
});
wrap(net.Socket.prototype as unknown as Record<string, unknown>, '_writeGeneric', (self) => {
  if ((self as Net.Socket).remotePort === fakePort) mark('model request written');
});
wrap(net.Socket.prototype as unknown as Record<string, unknown>, 'emit', (self, args) => {
  const [event] = args;
  if (event === 'data' && (self as Net.Socket).remotePort === fakePort) mark('model bytes read');
});
wrap(net.Socket.prototype as unknown as Record<string, unknown>, 'uncork', (self) => {
  if ((self as Net.Socket).remotePort !== fakePort && (self as Net.Socket).writableCorked === 1) mark('frames: socket uncorked');
});
// TurnService since the chat service split; ChatService in older builds.
const chatService = appModule('chat/turn.service.js')?.TurnService?.prototype ?? appModule('chat/chat.service.js')?.ChatService?.prototype;
if (chatService?.userMessage) {
  const userMessage = chatService.userMessage as Fn;
  chatService.userMessage = async function (this: unknown, ...args: unknown[]) {
    await userMessage.apply(this, args);
    mark('user_message handled');
  };
}
// FrameSocketServer since the transport rework; FrameWsAdapter in older builds.
const adapter = (appModule('transport/frame-socket.server.js')?.FrameSocketServer ?? appModule('transport/frame-ws.adapter.js')?.FrameWsAdapter)?.prototype;
if (adapter) wrap(adapter, 'dispatch', () => mark('adapter: frame dispatched'));
const pipe = appModule('transport/frame-validation.pipe.js')?.FrameValidationPipe?.prototype;
if (pipe) {
  const transform = pipe.transform as Fn;
  pipe.transform = async function (this: unknown, ...args: unknown[]) {
    mark('validation begins');
    const value = await transform.apply(this, args);
    mark('validation done');
    return value;
  };
}
const gateway = appModule('chat/chat.gateway.js')?.ChatGateway?.prototype;
// handleMessage (the @OnFrame seam) since the transport rework; onUserMessage in older builds.
if (gateway) wrap(gateway, gateway.onUserMessage ? 'onUserMessage' : 'handleMessage', () => mark('gateway method'));
const group = appModule('storage/group-commit.js')?.GroupCommit?.prototype;
if (group) {
  wrap(group, 'run', () => mark('rows asked to be written'));
  wrap(group, 'flush', () => mark('rows: transaction begins'));
  const flush = group.flush as Fn;
  group.flush = async function (this: unknown, ...args: unknown[]) {
    await flush.apply(this, args);
    mark('rows: committed');
  };
}
const dir = process.env.BENCH_TRACE_DIR;
if (dir) {
  setInterval(() => writeFileSync(join(dir, `${process.env.BENCH_TRACE_NAME ?? basename(root)}-${process.pid}.json`), JSON.stringify(turns)), 1000).unref();
}

/**
 * The floor: a bare relay in plain `ws` + `http`, no framework. On a `user_message` it asks the
 * model (UPSTREAM, an OpenAI-compatible base URL) for a streamed answer, parses the SSE and sends
 * every piece as one `agent_response` frame, then `agent_response_end` with the whole text — the
 * least any server in this place has to do. Prints `listening on ws://HOST:PORT/ws`.
 */
import { randomUUID } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

const upstream = new URL(`${(process.env.UPSTREAM ?? '').replace(/\/+$/, '')}/chat/completions`);
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
const server = http.createServer((_req, res) => res.writeHead(404).end());
const wss = new WebSocketServer({ server, path: '/ws', maxPayload: 65536 });

wss.on('connection', (ws) => {
  ws.send(JSON.stringify({ type: 'connected', connection_id: randomUUID(), protocol: 1 }));
  ws.on('message', (data) => {
    let frame: any;
    try {
      frame = JSON.parse(String(data));
    } catch {
      return;
    }
    if (frame?.type === 'user_message' && typeof frame.content === 'string') relay(ws, frame);
  });
});

function relay(ws: WebSocket, frame: { id?: string; content: string }): void {
  const chatId = randomUUID();
  const messageId = randomUUID();
  const body = JSON.stringify({
    model: 'deepseek-v4-flash',
    messages: [{ role: 'user', content: frame.content }],
    stream: true,
    stream_options: { include_usage: true },
  });
  const req = http.request(
    upstream,
    {
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', authorization: 'Bearer x', 'content-length': Buffer.byteLength(body) },
    },
    (res) => {
      res.setEncoding('utf8');
      let buffer = '';
      let seq = 0;
      let content = '';
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (!event.startsWith('data: ') || event === 'data: [DONE]') continue;
          const piece = JSON.parse(event.slice(6)).choices?.[0]?.delta?.content;
          if (!piece) continue;
          content += piece;
          seq += 1;
          ws.send(JSON.stringify({ type: 'agent_response', chat_id: chatId, message_id: messageId, id: frame.id, seq, content: piece }));
        }
      });
      res.on('end', () =>
        ws.send(JSON.stringify({ type: 'agent_response_end', chat_id: chatId, message_id: messageId, id: frame.id, seq, status: 'complete', content })),
      );
    },
  );
  req.on('error', () => ws.send(JSON.stringify({ type: 'error', code: 'upstream_unavailable', message: 'relay: upstream failed', id: frame.id })));
  req.end(body);
}

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`listening on ws://127.0.0.1:${port}/ws\n`);
});

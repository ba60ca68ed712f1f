import WebSocket from 'ws';

export type AnyFrame = Record<string, any> & { type: string };

/** The HTTP status a WebSocket upgrade gets (101 when it is accepted, 0 when the server drops it). */
export function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    socket.on('open', () => {
      socket.close();
      resolve(101);
    });
    socket.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    socket.on('error', (error: Error & { code?: string }) => (error.code === 'ECONNRESET' ? resolve(0) : reject(error)));
  });
}

/**
 * A protocol client for tests: records every frame and waits for the ones a test expects, in order.
 * `next` consumes frames, so a test reads the stream exactly as it arrived.
 */
export class WsTestClient {
  readonly frames: AnyFrame[] = [];
  private cursor = 0;
  private waiters: Array<() => void> = [];
  closeCode?: number;
  readonly closed: Promise<number>;
  connectionId = '';

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      this.frames.push(JSON.parse(String(data)));
      this.wake();
    });
    this.closed = new Promise((resolve) =>
      socket.on('close', (code) => {
        this.closeCode = code;
        this.wake();
        resolve(code);
      }),
    );
  }

  /** Opens a socket and waits for its `connected` frame; `protocols` are the subprotocols it offers. */
  static async connect(url: string, options?: WebSocket.ClientOptions, protocols?: string[]): Promise<WsTestClient> {
    const client = new WsTestClient(protocols ? new WebSocket(url, protocols, options) : new WebSocket(url, options));
    const connected = await client.next((f) => f.type === 'connected');
    client.connectionId = connected.connection_id;
    return client;
  }

  send(frame: object | string | Buffer): void {
    this.socket.send(typeof frame === 'string' || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame));
  }

  /** The next frame (after those already consumed) matching `match`; frames before it are consumed too. */
  async next(match: (f: AnyFrame) => boolean = () => true, timeoutMs = 5000): Promise<AnyFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.cursor < this.frames.length) {
        const frame = this.frames[this.cursor++];
        if (match(frame)) return frame;
      }
      const left = deadline - Date.now();
      if (left <= 0 || this.closeCode !== undefined) {
        throw new Error(`no matching frame within ${timeoutMs} ms; got: ${JSON.stringify(this.frames.slice(-8))}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  nextOfType(type: string, timeoutMs?: number): Promise<AnyFrame> {
    return this.next((f) => f.type === type, timeoutMs);
  }

  /** Every frame up to and including the first that matches `until`. */
  async collect(until: (f: AnyFrame) => boolean, timeoutMs = 10000): Promise<AnyFrame[]> {
    const start = this.cursor;
    await this.next(until, timeoutMs);
    return this.frames.slice(start, this.cursor);
  }

  /** The frames not yet consumed, after waiting `ms` for stragglers. */
  async rest(ms = 100): Promise<AnyFrame[]> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    const out = this.frames.slice(this.cursor);
    this.cursor = this.frames.length;
    return out;
  }

  close(): void {
    this.socket.close();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

/** A chat made over the protocol (the fake model's default answer), for tests that need some; its id. */
export async function makeChat(app: { wsUrl: string; url: string }, text: string, cookie?: string): Promise<string> {
  const ws = await WsTestClient.connect(app.wsUrl, { headers: { Origin: app.url, ...(cookie ? { Cookie: cookie } : {}) } });
  try {
    ws.send({ type: 'user_message', id: 'mk', content: text });
    const created = await ws.next((f) => f.type === 'chat_created');
    await ws.next((f) => f.type === 'agent_response_end');
    return created.chat_id as string;
  } finally {
    ws.socket.close();
  }
}

/** The fault specs' private Redis and PostgreSQL live in bench/ (the scale bench starts them too). */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { freePort } from '../../bench/private-servers';

export { freePort, PrivatePostgres, PrivateRedis } from '../../bench/private-servers';

/**
 * A TCP proxy in front of a Redis that hands a connection's replies over `delayMs` late once it has
 * sent SUBSCRIBE, in order: an instance behind it gets its pub/sub messages late while its commands
 * are answered at once (the two connections' race, made wide on purpose).
 */
export class SlowSubscriberProxy {
  private constructor(
    private readonly server: Server,
    private readonly sockets: Set<Socket>,
    readonly port: number,
  ) {}

  static async start(targetPort: number, delayMs: number): Promise<SlowSubscriberProxy> {
    const port = await freePort();
    const sockets = new Set<Socket>();
    const server = createServer((client) => {
      const upstream = connect(targetPort, '127.0.0.1');
      let slow = false;
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('error', () => undefined);
        socket.on('close', () => (sockets.delete(socket), client.destroy(), upstream.destroy()));
      }
      client.on('data', (data) => {
        if (/subscribe/i.test(String(data))) slow = true;
        upstream.write(data);
      });
      upstream.on('data', (data) => {
        if (slow) setTimeout(() => client.write(data), delayMs);
        else client.write(data);
      });
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    return new SlowSubscriberProxy(server, sockets, port);
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/**
 * A TCP proxy in front of a Redis that can cut the link without closing it (`pause`): what either side
 * sends meanwhile waits, as TCP would keep it through a network partition, and goes through in order
 * on `resume`. An instance behind it is alive but cannot reach Redis, while the others can.
 */
export class PartitionProxy {
  private constructor(
    private readonly server: Server,
    private readonly sockets: Set<Socket>,
    private readonly link: { paused: boolean; waiting: Array<() => void> },
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<PartitionProxy> {
    const port = await freePort();
    const sockets = new Set<Socket>();
    const link = { paused: false, waiting: [] as Array<() => void> };
    const server = createServer((client) => {
      const upstream = connect(targetPort, '127.0.0.1');
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('error', () => undefined);
        socket.on('close', () => (sockets.delete(socket), client.destroy(), upstream.destroy()));
      }
      const forward = (to: Socket) => (data: Buffer) => {
        if (link.paused) link.waiting.push(() => to.write(data));
        else to.write(data);
      };
      client.on('data', forward(upstream));
      upstream.on('data', forward(client));
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    return new PartitionProxy(server, sockets, link, port);
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  pause(): void {
    this.link.paused = true;
  }

  /** Everything held goes through, in the order it was sent. */
  resume(): void {
    this.link.paused = false;
    for (const send of this.link.waiting.splice(0)) send();
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

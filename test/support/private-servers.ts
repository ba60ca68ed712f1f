/** The fault specs' private Redis and PostgreSQL live in bench/ (the scale bench starts them too). */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { freePort } from '../../bench/private-servers';

export { freePort, PrivatePostgres, PrivateRedis } from '../../bench/private-servers';

/** How one proxied connection passes a chunk on: `toClient` for what Redis sent, else what the client sent. */
type Relay = (data: Buffer, to: Socket, toClient: boolean) => void;

/** A TCP proxy in front of a Redis on `targetPort`; each connection relays its chunks through its own `Relay`. */
abstract class RedisProxy {
  protected constructor(
    private readonly server: Server,
    private readonly sockets: Set<Socket>,
    readonly port: number,
  ) {}

  protected static async listen(targetPort: number, relayFor: () => Relay): Promise<{ server: Server; sockets: Set<Socket>; port: number }> {
    const port = await freePort();
    const sockets = new Set<Socket>();
    const server = createServer((client) => {
      const upstream = connect(targetPort, '127.0.0.1');
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('error', () => undefined);
        socket.on('close', () => (sockets.delete(socket), client.destroy(), upstream.destroy()));
      }
      const relay = relayFor();
      client.on('data', (data: Buffer) => relay(data, upstream, false));
      upstream.on('data', (data: Buffer) => relay(data, client, true));
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    return { server, sockets, port };
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
 * A TCP proxy in front of a Redis that hands a connection's replies over `delayMs` late once it has
 * sent SUBSCRIBE, in order: an instance behind it gets its pub/sub messages late while its commands
 * are answered at once (the two connections' race, made wide on purpose).
 */
export class SlowSubscriberProxy extends RedisProxy {
  static async start(targetPort: number, delayMs: number): Promise<SlowSubscriberProxy> {
    const { server, sockets, port } = await RedisProxy.listen(targetPort, () => {
      let slow = false;
      return (data, to, toClient) => {
        if (!toClient && /subscribe/i.test(String(data))) slow = true;
        if (toClient && slow) setTimeout(() => to.write(data), delayMs);
        else to.write(data);
      };
    });
    return new SlowSubscriberProxy(server, sockets, port);
  }
}

/**
 * A TCP proxy in front of a Redis that can cut the link without closing it (`pause`): what either side
 * sends meanwhile waits, as TCP would keep it through a network partition, and goes through in order
 * on `resume`. An instance behind it is alive but cannot reach Redis, while the others can.
 */
export class PartitionProxy extends RedisProxy {
  private constructor(
    server: Server,
    sockets: Set<Socket>,
    port: number,
    private readonly link: { paused: boolean; waiting: Array<() => void> },
  ) {
    super(server, sockets, port);
  }

  static async start(targetPort: number): Promise<PartitionProxy> {
    const link = { paused: false, waiting: [] as Array<() => void> };
    const { server, sockets, port } = await RedisProxy.listen(targetPort, () => (data, to) => {
      if (link.paused) link.waiting.push(() => to.write(data));
      else to.write(data);
    });
    return new PartitionProxy(server, sockets, port, link);
  }

  pause(): void {
    this.link.paused = true;
  }

  /** Everything held goes through, in the order it was sent. */
  resume(): void {
    this.link.paused = false;
    for (const send of this.link.waiting.splice(0)) send();
  }
}

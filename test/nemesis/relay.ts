/**
 * A small userspace TCP relay that stands in for a slow or failing network link (this kernel has
 * no `tc netem`). Each chunk read on one side is written to the other after `delayMs` plus a
 * random jitter, in order; connections can be reset at random (`resetRate` per chunk), all cut at
 * once, or black-holed (bytes accepted and never delivered, as in a partition that drops
 * packets). Delays apply per direction, so a relay with `delayMs: 10` adds 20 ms to a round trip.
 */
import { connect, createServer, type Server, type Socket } from "node:net";

export interface LinkSettings {
  /** One-way delay added to every chunk. */
  delayMs: number;
  /** Uniform extra delay in [0, jitterMs) per chunk (order is kept). */
  jitterMs: number;
  /** Probability that a chunk resets its connection instead of passing. */
  resetRate: number;
  /** Bytes are accepted and dropped; no connection is closed. */
  blackhole: boolean;
}

export const CLEAN_LINK: LinkSettings = { delayMs: 0, jitterMs: 0, resetRate: 0, blackhole: false };

/**
 * One direction of a connection: chunks are delivered no earlier than their due time, in order.
 * One queue and one timer per direction: a timer per chunk could fire out of order (timers are
 * scheduled against the event loop's cached clock, so two chunks due 0.1 ms apart can swap),
 * and a swapped TLS record fails the connection with "bad record mac".
 */
class DelayedPipe {
  private due = 0;
  private readonly queue: Array<{ due: number; chunk: Buffer }> = [];
  private timer: NodeJS.Timeout | undefined;
  constructor(
    private readonly to: Socket,
    private readonly link: () => LinkSettings,
    private readonly random: () => number,
    private readonly reset: () => void,
  ) {}

  push(chunk: Buffer): void {
    const link = this.link();
    if (link.blackhole) return;
    if (link.resetRate > 0 && this.random() < link.resetRate) {
      this.reset();
      return;
    }
    const now = performance.now();
    this.due = Math.max(this.due, now + link.delayMs + link.jitterMs * this.random());
    this.queue.push({ due: this.due, chunk });
    this.flush();
  }

  /** Writes every chunk that is due, in order, and sets the one timer for the next. */
  private flush(): void {
    if (this.timer !== undefined) return;
    const now = performance.now();
    let next = this.queue[0];
    while (next !== undefined && next.due - now < 1) {
      this.queue.shift();
      if (!this.to.destroyed) this.to.write(next.chunk);
      next = this.queue[0];
    }
    if (next === undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, next.due - now);
  }
}

export class Relay {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  link: LinkSettings = { ...CLEAN_LINK };
  /** Connections relayed so far, and how many were reset by `resetRate` or `cut()`. */
  readonly stats = { connections: 0, resets: 0 };

  constructor(
    private readonly target: { host: string; port: number },
    private readonly random: () => number = Math.random,
  ) {}

  /** Listens on `host:port` (port 0: any) and resolves with the port. */
  listen(host: string, port = 0): Promise<number> {
    const server = createServer((client) => this.accept(client));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        const address = server.address();
        resolve(typeof address === "object" && address ? address.port : port);
      });
    });
  }

  private accept(client: Socket): void {
    this.stats.connections++;
    const upstream = connect(this.target.port, this.target.host);
    this.sockets.add(client).add(upstream);
    const reset = () => {
      this.stats.resets++;
      client.resetAndDestroy();
      upstream.resetAndDestroy();
    };
    const settings = () => this.link;
    const up = new DelayedPipe(upstream, settings, this.random, reset);
    const down = new DelayedPipe(client, settings, this.random, reset);
    client.on("data", (chunk) => up.push(chunk));
    upstream.on("data", (chunk) => down.push(chunk));
    const close = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.setNoDelay(true);
      s.on("error", close);
      s.on("close", close);
    }
  }

  /** Resets every open connection (new ones are still accepted). */
  cut(): void {
    for (const s of this.sockets) {
      this.stats.resets++;
      s.resetAndDestroy();
    }
    this.sockets.clear();
  }

  async close(): Promise<void> {
    this.cut();
    const server = this.server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

import type { AddressInfo, Socket } from "node:net";
import { createServer, type Server, type TLSSocket } from "node:tls";
import type { Logger } from "pino";
import { parseAddress } from "./address.ts";
import { Connection } from "./connection.ts";
import { type Envelope, encodeEnvelope } from "./envelope.ts";
import { NetError } from "./errors.ts";
import { encodeFrame } from "./frame.ts";
import { type ChannelsOptions, checkCredentials, type ResolvedOptions, resolveOptions } from "./options.ts";
import { KEEPALIVE_MS, OutboundPeer } from "./peer.ts";
import { certificateDer, nodeIdOfDer as peerIdOfDer, peerNodeId } from "./tls.ts";
import { FrameWriter } from "./writer.ts";

const MAX_TIMER_MS = 2 ** 31 - 1;

export type MessageHandler = (from: string, message: unknown) => void;
export type RequestHandler = (from: string, message: unknown) => Promise<unknown>;

export interface PeerStats {
  /** Our outbound connection to the peer is up. */
  connected: boolean;
  /** The peer's connection to us is up. */
  inbound: boolean;
  /** Bytes waiting in our outbound queue to the peer. */
  queuedBytes: number;
  /** Frames handed to the outbound socket. */
  sent: number;
  /** Frames refused because the outbound queue was full (or too large to send). */
  dropped: number;
  /** Frames received from the peer, on any connection. */
  received: number;
  /** When a frame last arrived from the peer (ms since the epoch), or null if none has. */
  lastReceivedAt: number | null;
}

/** What a caller may add to a request. */
export interface RequestOptions {
  /**
   * Gives up on the request: it fails with "cancelled" if its frame was still queued (and is
   * withdrawn, so the peer never sees it), or "abandoned" if it was already written.
   */
  signal?: AbortSignal;
  /**
   * Called at once with a function that gives up on the request as `signal` does: the cheap form
   * for a caller that makes one request per client call (an AbortSignal and its listener cost
   * tens of microseconds each).
   */
  withCancel?: (cancel: () => void) => void;
  /** Called once the request is handed to a socket: from then on the peer may run it. */
  onWritten?: () => void;
}

interface Pending {
  to: string;
  /** The socket the request went out on, once written; its loss fails the request. */
  socket: Socket | undefined;
  timer: NodeJS.Timeout;
  resolve(value: unknown): void;
  reject(err: NetError): void;
}

/**
 * Mutually authenticated, framed channels between the nodes of one service. See docs/net.md.
 * Every method is safe to call at any time: a dead or slow peer costs a dropped message, never a
 * blocked caller or an exception.
 */
export class NodeChannels {
  readonly #opts: ResolvedOptions;
  readonly #log: Logger;
  readonly #server: Server;
  readonly #peers = new Map<string, OutboundPeer>();
  /** At most one inbound connection per peer: a newer one replaces an older (likely dead) one. */
  readonly #inbound = new Map<string, Connection>();
  /** Every accepted socket, authenticated or not yet, so close() can end them all. */
  readonly #sockets = new Set<TLSSocket>();
  readonly #received = new Map<string, number>();
  readonly #lastReceivedAt = new Map<string, number>();
  /** When any bytes last arrived from the peer, on either connection (the stall check's "heard"). */
  readonly #lastHeardAt = new Map<string, number>();
  readonly #pending = new Map<number, Pending>();
  #unsendable = new Map<string, number>();
  #nextRequestId = 0;
  #onMessage: MessageHandler | undefined;
  #onRequest: RequestHandler | undefined;
  #closed = false;

  private constructor(opts: ResolvedOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    this.#server = createServer(
      {
        key: opts.privateKeyPem,
        cert: opts.certPem,
        ca: [opts.serviceCertPem],
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: "TLSv1.3",
        handshakeTimeout: opts.handshakeTimeoutMs,
      },
      (socket) => this.#accept(socket),
    );
    this.#server.on("tlsClientError", (err: NodeJS.ErrnoException, socket) => {
      this.#log.warn(
        { remote: `${socket.remoteAddress}:${socket.remotePort}`, err: err.message, code: err.code },
        "refused a TLS connection: handshake failed",
      );
    });
  }

  /** Starts listening; resolves once the port is bound. */
  static async listen(options: ChannelsOptions): Promise<NodeChannels> {
    const resolved = resolveOptions(options);
    let channels: NodeChannels;
    try {
      channels = new NodeChannels(resolved);
    } catch (err) {
      // Node's TLS layer rejects a key that does not match the certificate, or unreadable PEM.
      throw new NetError(
        "config",
        `cannot set up TLS with this key and certificate: ${(err as Error).message}`,
      );
    }
    const { host, port } = channels.#opts.listen;
    await new Promise<void>((resolve, reject) => {
      const server = channels.#server;
      const onError = (err: Error) => {
        reject(new NetError("listen", `cannot listen on ${host}:${port}: ${err.message}`));
      };
      server.once("error", onError);
      server.listen(port, host, () => {
        server.off("error", onError);
        server.on("error", (err) => channels.#log.error({ err: err.message }, "listener error"));
        resolve();
      });
    });
    channels.#log.info({ node: channels.#opts.nodeId, port: channels.port }, "node channels listening");
    return channels;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  get nodeId(): string {
    return this.#opts.nodeId;
  }

  /** The certificate this node presents (the one a peer must be given with setPeer). */
  get certPem(): string {
    return this.#opts.certPem;
  }

  /**
   * Renewed certificates (same node key, same service key): new connections, in and out, use
   * them; connections already up keep theirs until they end.
   */
  renewCertificates(certPem: string, serviceCertPem: string): void {
    checkCredentials(this.#opts.nodeId, certPem, serviceCertPem);
    this.#server.setSecureContext({ key: this.#opts.privateKeyPem, cert: certPem, ca: [serviceCertPem] });
    // Outbound peers read these two fields when they dial.
    this.#opts.certPem = certPem;
    this.#opts.serviceCertPem = serviceCertPem;
  }

  /**
   * Adds a peer (and dials it at once), or points an existing one at a new address or
   * certificate. `certPem` is the certificate the service endorsed for that node (in Coco, its
   * `nodes.endorsed_certificates` record): the only one accepted from it, dialing or dialed
   * (and, after a change, the previous one, so a renewal in flight does not cut the node off).
   */
  setPeer(nodeId: string, address: string, certPem: string): void {
    if (this.#closed) throw new NetError("closed", "node channels are closed");
    if (typeof nodeId !== "string" || !/^[0-9a-f]{64}$/.test(nodeId)) {
      throw new NetError(
        "config",
        `peer id must be 64 lowercase hex characters, got ${JSON.stringify(nodeId)}`,
      );
    }
    if (nodeId === this.#opts.nodeId) throw new NetError("config", "a node cannot be its own peer");
    const hostPort = parseAddress(address);
    let der: Buffer;
    try {
      der = certificateDer(certPem);
    } catch (err) {
      throw new NetError(
        "config",
        `certificate of peer ${nodeId} is not readable: ${(err as Error).message}`,
      );
    }
    if (peerIdOfDer(der) !== nodeId) {
      throw new NetError("config", `the certificate given for peer ${nodeId} is for another key`);
    }
    const existing = this.#peers.get(nodeId);
    if (existing) {
      existing.setCertificate(der);
      if (existing.address.host !== hostPort.host || existing.address.port !== hostPort.port) {
        this.#log.info({ peer: nodeId, address }, "peer address changed");
        existing.setAddress(hostPort);
      }
      return;
    }
    const peer: OutboundPeer = new OutboundPeer(
      nodeId,
      hostPort,
      der,
      this.#opts,
      (socket, onReady) => this.#wrap(socket, nodeId, "out", peer.writer, onReady),
      () => this.#lastHeardAt.get(nodeId) ?? 0,
    );
    this.#peers.set(nodeId, peer);
    this.#received.set(nodeId, 0);
    this.#log.info({ peer: nodeId, address }, "peer added");
    peer.start();
  }

  /** Closes both directions, discards queued frames, fails pending requests, forgets the peer. */
  removePeer(nodeId: string): void {
    const peer = this.#peers.get(nodeId);
    if (!peer) return;
    this.#peers.delete(nodeId);
    this.#received.delete(nodeId);
    this.#lastReceivedAt.delete(nodeId);
    this.#lastHeardAt.delete(nodeId);
    this.#unsendable.delete(nodeId);
    peer.stop();
    this.#inbound.get(nodeId)?.close();
    this.#inbound.delete(nodeId);
    for (const [id, pending] of this.#pending) {
      if (pending.to === nodeId) this.#fail(id, new NetError("closed", `peer ${nodeId} was removed`));
    }
    this.#log.info({ peer: nodeId }, "peer removed");
  }

  /**
   * Queues a one-way message. False when it was not queued: unknown peer, queue full, or the
   * message is too large for one frame. Never blocks, never throws for a dead peer.
   */
  send(to: string, message: unknown): boolean {
    const peer = this.#peers.get(to);
    if (!peer || this.#closed) return false;
    const frame = this.#frame(to, { kind: "msg", body: message });
    return frame !== undefined && peer.writer.enqueue(frame);
  }

  onMessage(handler: MessageHandler): void {
    this.#onMessage = handler;
  }

  /**
   * Sends a request and resolves with the peer's answer. Rejects with a NetError whose code says
   * why: "timeout", "disconnected" (the connection it went out on closed first), "dropped",
   * "unknown-peer", "encode", "remote" (the peer's handler failed) or "closed".
   */
  request(to: string, message: unknown, timeoutMs: number, options: RequestOptions = {}): Promise<unknown> {
    // Node's timers cannot wait longer than 2^31-1 ms; a larger value would fire at once.
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > MAX_TIMER_MS) {
      return Promise.reject(
        new NetError("config", `timeoutMs must be a number from 1 to ${MAX_TIMER_MS}, got ${timeoutMs}`),
      );
    }
    if (this.#closed) return Promise.reject(new NetError("closed", "node channels are closed"));
    const peer = this.#peers.get(to);
    if (!peer) return Promise.reject(new NetError("unknown-peer", `no peer ${to}`));
    const id = this.#nextRequestId++;
    let frame: Buffer;
    try {
      frame = this.#encode({ kind: "req", id, body: message });
    } catch (err) {
      return Promise.reject(err);
    }
    const { signal, onWritten, withCancel } = options;
    if (signal?.aborted) return Promise.reject(new NetError("cancelled", `request to ${to} cancelled`));
    return new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        // A request still queued at its deadline is taken back: it must not run after its
        // sender has given up on it.
        const unsent = this.#pending.get(id)?.socket === undefined && peer.writer.withdraw(frame);
        const why = unsent ? " (the request could not be sent and was withdrawn)" : "";
        this.#fail(id, new NetError("timeout", `peer ${to} did not answer within ${timeoutMs} ms${why}`));
      }, timeoutMs);
      const onAbort = () => {
        const pending = this.#pending.get(id);
        if (!pending) return;
        // Still queued: take it back, and the peer never sees it. Written: it may have run.
        if (pending.socket === undefined && peer.writer.withdraw(frame)) {
          this.#fail(id, new NetError("cancelled", `request to ${to} cancelled before it was sent`));
        } else {
          this.#fail(id, new NetError("abandoned", `request to ${to} abandoned after it was sent`));
        }
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      withCancel?.(onAbort);
      const settle =
        <T>(f: (value: T) => void) =>
        (value: T) => {
          signal?.removeEventListener("abort", onAbort);
          f(value);
        };
      const pending: Pending = {
        to,
        socket: undefined,
        timer,
        resolve: settle(resolve),
        reject: settle(reject),
      };
      this.#pending.set(id, pending);
      const queued = peer.writer.enqueue(frame, (socket) => {
        pending.socket = socket;
        onWritten?.();
      });
      if (!queued) {
        this.#fail(id, new NetError("dropped", `queue to peer ${to} is full; request not sent`));
      }
    });
  }

  onRequest(handler: RequestHandler): void {
    this.#onRequest = handler;
  }

  stats(): Record<string, PeerStats> {
    const out: Record<string, PeerStats> = {};
    for (const [id, peer] of this.#peers) {
      const inbound = this.#inbound.get(id);
      out[id] = {
        connected: peer.connection?.ready === true,
        inbound: inbound?.ready === true,
        queuedBytes: peer.writer.queuedBytes,
        sent: peer.writer.sent,
        dropped: peer.writer.dropped + (this.#unsendable.get(id) ?? 0),
        received: this.#received.get(id) ?? 0,
        lastReceivedAt: this.#lastReceivedAt.get(id) ?? null,
      };
    }
    return out;
  }

  /** Stops listening and dialing, ends every connection, fails pending requests. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const peer of this.#peers.values()) peer.stop();
    this.#peers.clear();
    for (const socket of this.#sockets) socket.destroy();
    this.#inbound.clear();
    for (const id of [...this.#pending.keys()]) {
      this.#fail(id, new NetError("closed", "node channels closed before the answer"));
    }
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#log.info({ node: this.#opts.nodeId }, "node channels closed");
  }

  // ------------------------------------------------------------ internals

  #accept(socket: TLSSocket): void {
    this.#sockets.add(socket);
    socket.on("close", () => this.#sockets.delete(socket));
    socket.on("error", (err) => this.#log.debug({ err: err.message }, "inbound socket error"));
    if (this.#closed) {
      socket.destroy();
      return;
    }
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    const id = socket.authorized ? peerNodeId(socket) : undefined;
    const peer = id === undefined ? undefined : this.#peers.get(id);
    if (id === undefined || !peer) {
      this.#log.warn(
        { remote, node: id ?? "(no valid certificate)" },
        "refused a connection from a node that is not a peer",
      );
      socket.destroy();
      return;
    }
    // The key is a peer's; the certificate must also be the one the service endorsed for it.
    if (!peer.accepts(socket.getPeerCertificate()?.raw)) {
      this.#log.warn(
        { remote, node: id },
        "refused a connection from a peer's key presenting a certificate that is not its endorsed certificate",
      );
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    socket.setKeepAlive(true, KEEPALIVE_MS);
    const previous = this.#inbound.get(id);
    if (previous) {
      this.#log.info({ peer: id }, "peer reconnected; closing its previous inbound connection");
      previous.close();
    }
    const conn = this.#wrap(
      socket,
      id,
      "in",
      new FrameWriter(this.#opts.maxQueuedBytesPerPeer, { coalesce: true }),
    );
    this.#inbound.set(id, conn);
    this.#log.info({ peer: id, remote }, "accepted connection from peer");
    peer.peerConnected();
  }

  #wrap(
    socket: TLSSocket,
    peerId: string,
    direction: "in" | "out",
    writer: FrameWriter,
    onReady?: (conn: Connection) => void,
  ): Connection {
    // Part of a large frame is news from the peer too: it is alive and its link to us carries bytes.
    socket.on("data", () => {
      if (this.#peers.has(peerId)) this.#lastHeardAt.set(peerId, Date.now());
    });
    return new Connection(socket, peerId, direction, writer, this.#opts.maxFrameBytes, this.#log, {
      onEnvelope: (conn, envelope) => this.#dispatch(conn, envelope),
      onClose: (conn) => this.#connectionClosed(conn),
      ...(onReady ? { onReady } : {}),
    });
  }

  #connectionClosed(conn: Connection): void {
    if (conn.direction === "in" && this.#inbound.get(conn.peerId) === conn) this.#inbound.delete(conn.peerId);
    for (const [id, pending] of this.#pending) {
      if (pending.socket === conn.socket) {
        this.#fail(
          id,
          new NetError("disconnected", `connection to peer ${conn.peerId} closed before it answered`),
        );
      }
    }
  }

  #dispatch(conn: Connection, envelope: Envelope): void {
    const from = conn.peerId;
    // A peer removed while its bytes were in flight is no longer listened to.
    if (!this.#peers.has(from)) return;
    this.#received.set(from, (this.#received.get(from) ?? 0) + 1);
    this.#lastReceivedAt.set(from, Date.now());
    switch (envelope.kind) {
      case "msg":
        this.#deliver(from, envelope.body);
        return;
      case "req":
        this.#serve(conn, envelope.id, envelope.body);
        return;
      case "res": {
        const pending = this.#pending.get(envelope.id);
        // Late answers (after a timeout) and answers from the wrong peer are ignored.
        if (!pending || pending.to !== from) return;
        this.#pending.delete(envelope.id);
        clearTimeout(pending.timer);
        if (envelope.error !== undefined) {
          pending.reject(new NetError("remote", `peer ${from} failed the request: ${envelope.error}`));
        } else {
          pending.resolve(envelope.body);
        }
        return;
      }
    }
  }

  #deliver(from: string, body: unknown): void {
    const handler = this.#onMessage;
    if (!handler) return;
    try {
      handler(from, body);
    } catch (err) {
      // The handler's bug must not tear down a connection that other messages share.
      this.#log.error({ peer: from, err: (err as Error).message }, "message handler threw");
    }
  }

  #serve(conn: Connection, id: number, body: unknown): void {
    const handler = this.#onRequest;
    const answer = handler
      ? Promise.resolve().then(() => handler(conn.peerId, body))
      : Promise.reject(new Error("this node takes no requests"));
    answer.then(
      (result) => this.#respond(conn, { kind: "res", id, body: result }),
      (err: unknown) => {
        const reason = err instanceof Error ? err.message : String(err);
        this.#respond(conn, { kind: "res", id, error: reason });
      },
    );
  }

  #respond(conn: Connection, envelope: Envelope & { kind: "res" }): void {
    if (conn.closed || this.#closed) return;
    let frame = this.#frame(conn.peerId, envelope);
    if (frame === undefined) {
      frame = this.#frame(conn.peerId, { kind: "res", id: envelope.id, error: "answer could not be sent" });
    }
    if (frame !== undefined && !conn.writer.enqueue(frame)) {
      this.#log.warn({ peer: conn.peerId }, "dropped an answer: queue to peer is full");
    }
  }

  #encode(envelope: Envelope): Buffer {
    const payload = encodeEnvelope(envelope);
    if (payload.length > this.#opts.maxFrameBytes) {
      throw new NetError(
        "encode",
        `message of ${payload.length} bytes exceeds maxFrameBytes (${this.#opts.maxFrameBytes})`,
      );
    }
    return encodeFrame(payload);
  }

  /** The frame, or undefined (logged and counted as dropped) if the message cannot be sent. */
  #frame(to: string, envelope: Envelope): Buffer | undefined {
    try {
      return this.#encode(envelope);
    } catch (err) {
      this.#unsendable.set(to, (this.#unsendable.get(to) ?? 0) + 1);
      this.#log.error({ peer: to, err: (err as Error).message }, "message not sent");
      return undefined;
    }
  }

  #fail(id: number, err: NetError): void {
    const pending = this.#pending.get(id);
    if (!pending) return;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    pending.reject(err);
  }
}

import { connect, type TLSSocket } from "node:tls";
import type { HostPort } from "./address.ts";
import { backoffDelay } from "./backoff.ts";
import type { Connection } from "./connection.ts";
import type { ResolvedOptions } from "./options.ts";
import { pinNode } from "./tls.ts";
import { FrameWriter } from "./writer.ts";

export const KEEPALIVE_MS = 10_000;

/** Errors that mean "wrong or untrusted node", worth a warning every time, unlike a refused port. */
const TRUST_ERRORS = /CERT|SELF_SIGNED|VERIFY|NODE_ID_MISMATCH|ALERT/;

/**
 * Our side of the link to one peer: a dial loop that keeps one outbound TLS connection up,
 * reconnecting with backoff, and the bounded queue of frames to send over it. Frames we send
 * to the peer always travel on this connection; the peer's own dial to us carries its frames.
 */
/** Refused connection attempts to a peer logged at debug before one is logged at info. */
const QUIET_REFUSALS = 5;

/**
 * Frames sent on a connection, with nothing heard from the peer for `stallMs` (default 6 s, see
 * DEFAULT_STALL_MS), mean the link is stuck (a partition drops packets without a reset): the
 * connection is dropped and redialled. TCP alone would retransmit into the void with a back-off
 * that doubles (0.2, 0.4, ... 6.4 s), so after the partition heals the first frame got through
 * only as late as the partition had lasted.
 *
 * Heard means: bytes from the peer on either connection (even part of a frame), or the peer's TCP
 * taking our bytes. The latter matters for a large frame (a snapshot, a long AppendEntries) that
 * the peer answers only once it has all of it: while it reads, it says nothing. Bytes merely
 * entering the kernel prove nothing (small frames do during a partition too, until the kernel's
 * send buffer is full). But when our socket had a backlog (the kernel's buffer was full) at one
 * check and has passed it on since, the kernel made room, and only the peer's acknowledgements
 * free it. So a slow but steady reader keeps its link, and a black hole loses it `stallMs` after
 * the kernel stopped taking bytes.
 */
/** Silence from a peer, before it dials us anew, that makes us replace our own link to it. */
const SILENT_BEFORE_REDIAL_MS = 2_000;
/** How often a connection is checked for a stall. */
const STALL_CHECK_MS = 250;
/**
 * A TCP connect with no answer at all (no SYN-ACK, no reset: a black hole) is abandoned after
 * this long and tried again at once, so a healed partition is found within about this time instead
 * of at the kernel's next SYN retransmission (1, 2, 4 ... s after the dial).
 */
export const SYN_RETRY_MS = 1_000;

export class OutboundPeer {
  readonly id: string;
  readonly writer: FrameWriter;
  readonly #opts: ResolvedOptions;
  readonly #wrap: (socket: TLSSocket, onReady: (conn: Connection) => void) => Connection;
  #address: HostPort;
  /**
   * The certificates this peer may present: the one the service endorsed for it, and the one
   * before after a renewal (the peer serves the renewed one only once it has applied it).
   */
  #accepted: Buffer[];
  /** The socket being dialed or in use; any other socket's events are stale. */
  #current: TLSSocket | undefined;
  #connection: Connection | undefined;
  #connectedAt = 0;
  #attempt = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** When the current socket's TCP connection was made (0 while connecting or idle). */
  #tcpUpAt = 0;
  /** Set when the current dial went unanswered (a black hole): its retry comes at once. */
  #unanswered = false;
  /** Unanswered dials since the last connection. */
  #silentDials = 0;
  /** Stall detection: frames sent as of the last check, and since when none were answered. */
  #sentMark = 0;
  /** The writer's drains as of the last check, whether it had a backlog then, and the last progress. */
  #drainMark = 0;
  #backlogged = false;
  #progressAt = 0;
  #stalledSince: number | undefined;
  #stallTimer: NodeJS.Timeout | undefined;
  readonly #lastHeard: () => number;

  constructor(
    id: string,
    address: HostPort,
    certificateDer: Buffer,
    opts: ResolvedOptions,
    wrap: (socket: TLSSocket, onReady: (conn: Connection) => void) => Connection,
    lastHeard: () => number = () => 0,
  ) {
    this.id = id;
    this.#lastHeard = lastHeard;
    this.#address = address;
    this.#accepted = [certificateDer];
    this.#opts = opts;
    this.#wrap = wrap;
    this.writer = new FrameWriter(opts.maxQueuedBytesPerPeer, { coalesce: true });
  }

  get address(): HostPort {
    return this.#address;
  }

  /** The connection in use, once the peer has accepted it (its hello arrived). */
  get connection(): Connection | undefined {
    return this.#connection;
  }

  start(): void {
    this.#dial();
    this.#stallTimer = setInterval(() => this.#checkStall(), STALL_CHECK_MS);
    this.#stallTimer.unref();
  }

  /**
   * The peer just connected to us: the network between us works now. If our own link to it is
   * still dialing or waiting out a back-off (say a partition just healed), dial at once. If our
   * link is up but we had heard nothing from the peer for `SILENT_BEFORE_REDIAL_MS` before it
   * dialed, our link was cut too (its frames sit in TCP's retransmission back-off): replace it.
   * A link heard from recently, or made less than a second ago, is left alone, so two peers do
   * not make each other redial in turn.
   */
  peerConnected(): void {
    if (this.#stopped) return;
    const now = Date.now();
    const waiting = this.#connection === undefined && this.#tcpUpAt === 0;
    const cut =
      this.#connection !== undefined &&
      now - this.#tcpUpAt >= 1_000 &&
      now - this.#heardAt() >= SILENT_BEFORE_REDIAL_MS;
    if (!waiting && !cut) return;
    this.#opts.log.debug({ peer: this.id, cut }, "peer connected to us; dialing it at once");
    this.#redialNow();
  }

  /** True if `der` is a certificate this peer may present, either side of a connection. */
  accepts(der: Buffer | undefined): boolean {
    return der !== undefined && this.#accepted.some((c) => c.equals(der));
  }

  /**
   * The peer's endorsed certificate changed (renewed, same key): it is accepted from now on, and
   * the one before stays accepted until the next change.
   */
  setCertificate(der: Buffer): void {
    if (this.#accepted[0]!.equals(der)) return;
    this.#accepted = [der, this.#accepted[0]!];
  }

  /** Redials at once if the address changed; queued frames stay queued. */
  setAddress(address: HostPort): void {
    if (address.host === this.#address.host && address.port === this.#address.port) return;
    this.#address = address;
    this.#attempt = 0;
    this.#drop();
    this.#dial();
  }

  /** Ends the link for good: no more dialing, queue discarded. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#stallTimer);
    this.#drop();
    this.writer.clear();
  }

  #drop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const socket = this.#current;
    this.#current = undefined;
    this.#connection = undefined;
    this.#tcpUpAt = 0;
    this.#stalledSince = undefined;
    this.#backlogged = false;
    socket?.destroy();
  }

  /** When we last heard from the peer: bytes from it, or its TCP taking ours (see `stallMs`). */
  #heardAt(): number {
    return Math.max(this.#lastHeard(), this.#progressAt);
  }

  #redialNow(): void {
    this.#attempt = 0;
    this.#drop();
    this.#dial();
  }

  /** Drops and redials a connection whose frames went unanswered for `stallMs` (see above). */
  #checkStall(): void {
    const sent = this.writer.sent;
    const drains = this.writer.drains;
    if (this.#connection === undefined) {
      this.#sentMark = sent;
      this.#drainMark = drains;
      this.#backlogged = false;
      this.#stalledSince = undefined;
      return;
    }
    const now = Date.now();
    // A backlog at the last check that the kernel has taken since: the peer acknowledged bytes.
    if (this.#backlogged && drains !== this.#drainMark) this.#progressAt = now;
    this.#drainMark = drains;
    this.#backlogged = this.writer.backlogged;
    if (this.#stalledSince !== undefined && this.#heardAt() >= this.#stalledSince)
      this.#stalledSince = undefined;
    // Unanswered: frames handed over since the last check, or bytes still waiting for the kernel.
    if (sent !== this.#sentMark || this.#backlogged) {
      this.#sentMark = sent;
      this.#stalledSince ??= now;
    }
    if (this.#stalledSince !== undefined && now - this.#stalledSince >= this.#opts.stallMs) {
      this.#opts.log.info(
        { peer: this.id, silentMs: now - this.#stalledSince, backlogged: this.#backlogged },
        "no answer from peer on a connection that carries frames; redialling it",
      );
      this.#redialNow();
    }
  }

  #dial(): void {
    if (this.#stopped) return;
    this.#timer = undefined;
    const { host, port } = this.#address;
    const log = this.#opts.log;
    const socket = connect({
      host,
      port,
      key: this.#opts.privateKeyPem,
      cert: this.#opts.certPem,
      ca: [this.#opts.serviceCertPem],
      rejectUnauthorized: true,
      checkServerIdentity: pinNode(this.id, () => this.#accepted),
      minVersion: "TLSv1.3",
    });
    this.#current = socket;
    this.#unanswered = false;
    // Checked after the event loop's I/O phase, so a connect that completed while this process was
    // starved of CPU is seen before the timer gives up on it.
    const synTimer = setTimeout(
      () =>
        setImmediate(() => {
          if (socket !== this.#current || !socket.connecting) return;
          this.#unanswered = true;
          socket.destroy(new Error(`no TCP answer within ${SYN_RETRY_MS} ms`));
        }),
      SYN_RETRY_MS,
    );
    socket.once("connect", () => {
      clearTimeout(synTimer);
      if (socket === this.#current) this.#tcpUpAt = Date.now();
    });
    socket.once("close", () => clearTimeout(synTimer));
    // Covers TCP connect, the TLS handshake and the listener's hello.
    socket.setTimeout(this.#opts.handshakeTimeoutMs, () => {
      socket.destroy(new Error(`peer not accepted within ${this.#opts.handshakeTimeoutMs} ms`));
    });
    socket.once("secureConnect", () => {
      if (socket !== this.#current) return;
      socket.setNoDelay(true);
      socket.setKeepAlive(true, KEEPALIVE_MS);
      this.#wrap(socket, (conn) => {
        if (socket !== this.#current) return;
        socket.setTimeout(0);
        this.#connectedAt = Date.now();
        this.#silentDials = 0;
        this.#connection = conn;
        log.info({ peer: this.id, address: `${host}:${port}` }, "connected to peer");
      });
    });
    socket.on("error", (err: NodeJS.ErrnoException) => {
      if (socket !== this.#current) return;
      const data = { peer: this.id, address: `${host}:${port}`, err: err.message, code: err.code };
      if (TRUST_ERRORS.test(String(err.code))) log.warn(data, "peer connection refused on trust grounds");
      // Unanswered dials repeat every second while a peer is cut off: said once, at info.
      else if (this.#unanswered && this.#silentDials++ > 0) log.debug(data, "peer still does not answer");
      // A refused connection is normal while nodes start, join or restart: said at info only if
      // it persists, so a healthy start logs nothing alarming.
      else if (this.#attempt === (err.code === "ECONNREFUSED" ? QUIET_REFUSALS : 0))
        log.info(data, "peer connection failed; will retry with backoff");
      else log.debug(data, "peer connection failed again");
    });
    socket.on("close", () => {
      if (socket !== this.#current) return;
      const wasUp = this.#connection !== undefined;
      this.#current = undefined;
      this.#connection = undefined;
      if (wasUp) log.info({ peer: this.id }, "connection to peer closed");
      // Only a connection that stayed up a while earns a quick retry; one that dies at once
      // (say the peer does not know us yet) keeps backing off.
      if (wasUp && Date.now() - this.#connectedAt >= this.#opts.backoff.maxMs) this.#attempt = 0;
      // A dial nothing answered (a black hole, such as a partition) is tried again at once.
      if (this.#unanswered) this.#attempt = 0;
      this.#tcpUpAt = 0;
      this.#scheduleRedial();
    });
  }

  #scheduleRedial(): void {
    if (this.#stopped) return;
    const delay = backoffDelay(this.#attempt, this.#opts.backoff, Math.random());
    this.#attempt++;
    this.#timer = setTimeout(() => this.#dial(), delay);
  }
}

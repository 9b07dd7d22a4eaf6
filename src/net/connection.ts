import type { TLSSocket } from "node:tls";
import type { Logger } from "pino";
import { decodeEnvelope, type Envelope, encodeEnvelope, PROTOCOL_VERSION } from "./envelope.ts";
import { NetError } from "./errors.ts";
import { encodeFrame, FrameDecoder } from "./frame.ts";
import type { FrameWriter } from "./writer.ts";

export interface ConnectionEvents {
  /** A message, request or response (never a hello) arrived. */
  onEnvelope(conn: Connection, envelope: Envelope): void;
  /** Outbound only: the listener accepted us; frames may now flow. */
  onReady?(conn: Connection): void;
  onClose(conn: Connection): void;
}

const HELLO = encodeFrame(encodeEnvelope({ kind: "hello", version: PROTOCOL_VERSION }));

/**
 * One authenticated TLS socket to or from a known peer: reads frames and hands on envelopes,
 * writes through `writer`. A bad frame closes this socket only; the node carries on.
 *
 * The listener speaks first: once it has checked who dialed, it sends a hello. The dialer sends
 * nothing until that hello arrives. With TLS 1.3 the dialer's handshake completes before the
 * listener has even looked at the dialer's certificate, so without this wait a dialer would pour
 * its queue into a connection about to be refused (say, by a node that has not learnt of it yet)
 * and lose it all.
 */
export class Connection {
  readonly peerId: string;
  readonly direction: "in" | "out";
  readonly socket: TLSSocket;
  readonly writer: FrameWriter;
  #closed = false;
  #ready: boolean;

  constructor(
    socket: TLSSocket,
    peerId: string,
    direction: "in" | "out",
    writer: FrameWriter,
    maxFrameBytes: number,
    log: Logger,
    events: ConnectionEvents,
  ) {
    this.socket = socket;
    this.peerId = peerId;
    this.direction = direction;
    this.writer = writer;
    this.#ready = direction === "in";
    const decoder = new FrameDecoder(maxFrameBytes);
    const refuse = (reason: string) => {
      log.warn({ peer: peerId, direction, err: reason }, "closing connection: bad frame from peer");
      this.close();
    };
    socket.on("data", (chunk: Buffer) => {
      if (this.#closed) return;
      let envelopes: Envelope[];
      try {
        envelopes = decoder.push(chunk).map(decodeEnvelope);
      } catch (err) {
        refuse(err instanceof NetError ? err.message : String(err));
        return;
      }
      for (const envelope of envelopes) {
        if (this.#closed) return;
        if (envelope.kind === "hello") {
          if (this.#ready) return refuse("unexpected hello");
          if (envelope.version !== PROTOCOL_VERSION) {
            return refuse(`peer speaks protocol version ${envelope.version}, this node ${PROTOCOL_VERSION}`);
          }
          this.#ready = true;
          writer.attach(socket);
          events.onReady?.(this);
        } else if (!this.#ready) {
          return refuse(`${envelope.kind} frame before the listener's hello`);
        } else {
          events.onEnvelope(this, envelope);
        }
      }
    });
    // 'close' comes exactly once per socket, whoever ended it.
    socket.on("close", () => {
      this.#closed = true;
      writer.detach(socket);
      events.onClose(this);
    });
    if (direction === "in") {
      socket.write(HELLO);
      writer.attach(socket);
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Frames may flow: always for inbound, after the hello for outbound. */
  get ready(): boolean {
    return this.#ready && !this.#closed;
  }

  close(): void {
    this.#closed = true;
    this.socket.destroy();
  }
}

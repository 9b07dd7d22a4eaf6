import { NetError } from "./errors.ts";

/**
 * Wire framing: each frame is a 4-byte big-endian payload length followed by the payload.
 * TLS gives a byte stream; this restores message boundaries.
 */
export const FRAME_HEADER_BYTES = 4;
/** The largest length a u32 prefix can state. */
export const MAX_FRAME_LIMIT = 0xffff_ffff;

/** One buffer holding the header and a copy of the payload, ready for socket.write. */
export function encodeFrame(payload: Uint8Array): Buffer {
  if (payload.length === 0 || payload.length > MAX_FRAME_LIMIT) {
    throw new NetError(
      "encode",
      `frame payload must be 1 to ${MAX_FRAME_LIMIT} bytes, got ${payload.length}`,
    );
  }
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

/**
 * Splits a byte stream into frame payloads. Feed it chunks as they arrive; it returns the payloads
 * completed so far. It throws NetError("frame") on a zero or oversize length, as soon as the header
 * is seen, so a hostile length never makes it buffer more than `maxFrameBytes`. After a throw the
 * stream is unusable: the caller must close the connection.
 */
export class FrameDecoder {
  readonly #maxFrameBytes: number;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  /** Payload length of the frame being read, once its header is in. */
  #need: number | undefined;
  #failed = false;
  /** Bytes consumed so far, for error messages that say where. */
  #offset = 0;

  constructor(maxFrameBytes: number) {
    if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < 1 || maxFrameBytes > MAX_FRAME_LIMIT) {
      throw new NetError("config", `maxFrameBytes must be an integer from 1 to ${MAX_FRAME_LIMIT}`);
    }
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** Bytes held that do not yet form a whole frame. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#failed) throw new NetError("frame", "frame stream already failed; close the connection");
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    const out: Uint8Array[] = [];
    for (;;) {
      if (this.#need === undefined) {
        if (this.#buffered < FRAME_HEADER_BYTES) break;
        const header = this.#take(FRAME_HEADER_BYTES);
        const length = new DataView(header.buffer, header.byteOffset, FRAME_HEADER_BYTES).getUint32(0);
        if (length === 0 || length > this.#maxFrameBytes) {
          this.#failed = true;
          const at = this.#offset - FRAME_HEADER_BYTES;
          throw new NetError(
            "frame",
            length === 0
              ? `empty frame at stream offset ${at}`
              : `frame at stream offset ${at} declares ${length} bytes, more than the ${this.#maxFrameBytes} allowed`,
          );
        }
        this.#need = length;
      }
      if (this.#buffered < this.#need) break;
      out.push(this.#take(this.#need));
      this.#need = undefined;
    }
    return out;
  }

  /** The next n buffered bytes: a view when one chunk holds them all, else one copy. */
  #take(n: number): Uint8Array {
    this.#buffered -= n;
    this.#offset += n;
    const first = this.#chunks[0];
    if (first !== undefined && first.length >= n) {
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = new Uint8Array(n);
    let filled = 0;
    let used = 0;
    while (filled < n) {
      const chunk = this.#chunks[used] as Uint8Array;
      const part = Math.min(chunk.length, n - filled);
      out.set(part === chunk.length ? chunk : chunk.subarray(0, part), filled);
      filled += part;
      if (part === chunk.length) used++;
      else this.#chunks[used] = chunk.subarray(part);
    }
    // One splice for all chunks used up: a large frame spans hundreds of chunks.
    this.#chunks.splice(0, used);
    return out;
  }
}

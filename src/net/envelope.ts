import { Packr } from "msgpackr";
import { NetError } from "./errors.ts";

/**
 * What a frame carries. `msg` is one-way (Raft traffic); `req`/`res` pair up by `id` (forwarded
 * client requests). A `res` holds either `body` or, when the peer's handler failed, `error`.
 */
export type Envelope =
  | { kind: "hello"; version: number }
  | { kind: "msg"; body: unknown }
  | { kind: "req"; id: number; body: unknown }
  | { kind: "res"; id: number; body?: unknown; error?: string };

/** Bumped on any incompatible change to envelopes; peers of different versions do not talk. */
export const PROTOCOL_VERSION = 1;

// Plain msgpack: no msgpackr records, whose shared structure definitions would make the
// encoding depend on connection history.
const packr = new Packr({ useRecords: false });
// Decoded binaries are views into the payload (no copy each), which is then a buffer of its own:
// a log entry kept for hours pins the message it came in (its batch), never a socket chunk.
const viewing = new Packr({ useRecords: false, copyBuffers: false });
// For small payloads inside a larger chunk (acknowledgements, heartbeats: no binaries, as a rule)
// copying the payload would cost more than copying the odd binary they hold.
const copying = new Packr({ useRecords: false, copyBuffers: true });
/** Payloads from this size on are copied once, whole, if they share memory with anything else. */
const COPY_WHOLE_FROM = 256;

export function encodeEnvelope(envelope: Envelope): Uint8Array {
  try {
    return packr.pack(envelope);
  } catch (err) {
    throw new NetError("encode", `message cannot be encoded as msgpack: ${(err as Error).message}`);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function wholeNumber(value: unknown, kind: string, field = "id"): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new NetError("frame", `${kind} frame has no valid ${field} (a non-negative integer)`);
  }
  return value;
}

/** Decodes and checks one frame payload; any defect is NetError("frame"). */
export function decodeEnvelope(payload: Uint8Array): Envelope {
  // A plain Uint8Array makes msgpackr return binaries as Uint8Array, not Buffer, so values
  // compare equal to what the sender passed in.
  const own = payload.byteOffset === 0 && payload.buffer.byteLength === payload.byteLength;
  let view: Uint8Array;
  let unpackr: Packr;
  if (own) {
    view = new Uint8Array(payload.buffer, 0, payload.byteLength);
    unpackr = viewing;
  } else if (payload.byteLength >= COPY_WHOLE_FROM) {
    view = Uint8Array.prototype.slice.call(payload);
    unpackr = viewing;
  } else {
    view = new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
    unpackr = copying;
  }
  let value: unknown;
  try {
    value = unpackr.unpack(view);
  } catch (err) {
    throw new NetError("frame", `frame payload is not valid msgpack: ${(err as Error).message}`);
  }
  if (!isPlainObject(value)) throw new NetError("frame", "frame payload is not an envelope object");
  switch (value.kind) {
    case "hello":
      return { kind: "hello", version: wholeNumber(value.version, "hello", "version") };
    case "msg":
      return { kind: "msg", body: value.body };
    case "req":
      return { kind: "req", id: wholeNumber(value.id, "req"), body: value.body };
    case "res": {
      const id = wholeNumber(value.id, "res");
      if (value.error === undefined) return { kind: "res", id, body: value.body };
      if (typeof value.error !== "string") throw new NetError("frame", "res frame has a non-string error");
      return { kind: "res", id, error: value.error };
    }
    default:
      throw new NetError(
        "frame",
        `frame has unknown kind ${JSON.stringify(String(value.kind)).slice(0, 40)}`,
      );
  }
}

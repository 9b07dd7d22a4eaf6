// Moving values between host and sandbox: JSON text plus side-carried byte buffers.
//
// A value crosses as "packed": undefined, a JSON string, or an array [json, buf0, buf1, ...]
// where each byte buffer inside the value was replaced by {"\u0000coco.buf": index}. The guest
// half of this format lives in prelude.ts.
import type { QuickJSContext, QuickJSHandle } from "quickjs-emscripten-core";
import { JsConfigError } from "./errors.ts";

export const BUFFER_MARK = "\u0000coco.buf";

export interface Encoded {
  json: string;
  buffers: Uint8Array[];
}

function isMarked(value: unknown): value is Record<string, number> {
  return typeof value === "object" && value !== null && Object.hasOwn(value, BUFFER_MARK);
}

/** JSON-encodes a host value, lifting out Uint8Array/ArrayBuffer; undefined stays undefined. */
export function encodeValue(value: unknown, what: string): Encoded | undefined {
  if (value === undefined) return undefined;
  const buffers: Uint8Array[] = [];
  let json: string | undefined;
  try {
    json = JSON.stringify(value, function (this: Record<string, unknown>, key: string, v: unknown) {
      // `this[key]` is the value before toJSON ran: Buffer.toJSON would hide the bytes.
      const raw = this[key];
      if (raw instanceof Uint8Array || raw instanceof ArrayBuffer) {
        buffers.push(raw instanceof ArrayBuffer ? new Uint8Array(raw) : raw);
        return { [BUFFER_MARK]: buffers.length - 1 };
      }
      if (typeof v === "function" || typeof v === "symbol" || typeof v === "bigint") {
        throw new TypeError(`a ${typeof v} at key ${JSON.stringify(key)}`);
      }
      if (isMarked(v)) throw new TypeError(`the reserved key ${JSON.stringify(BUFFER_MARK)}`);
      return v;
    });
  } catch (error) {
    throw new JsConfigError(`${what} is not JSON-compatible: ${(error as Error).message}`);
  }
  if (json === undefined) throw new JsConfigError(`${what} is not JSON-compatible`);
  return { json, buffers };
}

/** Inverse of the guest's pack: JSON text with marks replaced by the carried buffers. */
export function decodeValue(json: string, buffers: readonly Uint8Array[]): unknown {
  if (buffers.length === 0) return JSON.parse(json);
  return JSON.parse(json, (_key, v: unknown) => {
    if (!isMarked(v)) return v;
    const buffer = buffers[v[BUFFER_MARK] as number];
    if (buffer === undefined) throw new TypeError("packed value refers to a missing buffer");
    return buffer;
  });
}

/** Copies an ArrayBuffer out of the sandbox. */
export function readBuffer(ctx: QuickJSContext, handle: QuickJSHandle): Uint8Array {
  const lifetime = ctx.getArrayBuffer(handle);
  try {
    return lifetime.value.slice();
  } finally {
    lifetime.dispose();
  }
}

/** Copies bytes into a new sandbox ArrayBuffer. */
export function newBuffer(ctx: QuickJSContext, bytes: Uint8Array): QuickJSHandle {
  // The library copies from `new Uint8Array(x)`, which for a view copies just its elements.
  return ctx.newArrayBuffer(bytes as unknown as ArrayBuffer);
}

/** Reads a packed value the guest produced. */
export function readPacked(ctx: QuickJSContext, handle: QuickJSHandle): unknown {
  const type = ctx.typeof(handle);
  if (type === "undefined") return undefined;
  if (type === "string") return JSON.parse(ctx.getString(handle));
  const length = ctx.getLength(handle) ?? 0;
  const json = ctx.getProp(handle, 0).consume((h) => ctx.getString(h));
  const buffers: Uint8Array[] = [];
  for (let i = 1; i < length; i++) buffers.push(ctx.getProp(handle, i).consume((h) => readBuffer(ctx, h)));
  return decodeValue(json, buffers);
}

/** Builds a packed value for the guest; the caller owns the returned handle. */
export function writePacked(ctx: QuickJSContext, value: unknown, what: string): QuickJSHandle {
  const encoded = encodeValue(value, what);
  if (encoded === undefined) return ctx.undefined;
  if (encoded.buffers.length === 0) return ctx.newString(encoded.json);
  const array = ctx.newArray();
  ctx.newString(encoded.json).consume((h) => ctx.setProp(array, 0, h));
  encoded.buffers.forEach((bytes, i) => {
    newBuffer(ctx, bytes).consume((h) => ctx.setProp(array, i + 1, h));
  });
  return array;
}

import { KvError } from "./errors.ts";
import { MAX_KEY_BYTES, MAX_VALUE_BYTES } from "./limits.ts";

/**
 * Internally keys and values are latin1 "binary strings": one char per byte. They are immutable
 * (so history cannot be changed by a caller mutating its buffer), usable as Map keys, and `<` on
 * them is unsigned byte order. Conversion happens only at the API boundary.
 */
export function toBinary(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}

/** A fresh plain Uint8Array (not a pooled Buffer, so `.buffer` exposes nothing else). */
export function fromBinary(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  if (text.length > 0) Buffer.from(out.buffer, 0, out.length).write(text, 0, text.length, "latin1");
  return out;
}

/** The smallest binary string strictly greater than `text`. */
export function successor(text: string): string {
  return `${text}\u0000`;
}

/**
 * Whether `key` passes checkKey: callers on the hot path test this first and build checkKey's
 * error context (a string naming the map and operation) only for a key that fails.
 */
export function validKey(key: unknown): key is Uint8Array {
  return key instanceof Uint8Array && key.byteLength <= MAX_KEY_BYTES;
}

/** Whether `value` passes checkValue (see validKey). */
export function validValue(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array && value.byteLength <= MAX_VALUE_BYTES;
}

export function checkKey(key: unknown, where: string): string {
  if (!(key instanceof Uint8Array)) throw new KvError(`${where}: key must be a Uint8Array`);
  if (key.byteLength > MAX_KEY_BYTES) {
    throw new KvError(`${where}: key is ${key.byteLength} bytes, more than the limit of ${MAX_KEY_BYTES}`);
  }
  return toBinary(key);
}

export function checkValue(value: unknown, where: string): string {
  if (!(value instanceof Uint8Array)) throw new KvError(`${where}: value must be a Uint8Array`);
  if (value.byteLength > MAX_VALUE_BYTES) {
    throw new KvError(
      `${where}: value is ${value.byteLength} bytes, more than the limit of ${MAX_VALUE_BYTES}`,
    );
  }
  return toBinary(value);
}

/** Orders strings by their UTF-8 bytes (the same as by code point; `<` compares UTF-16 units). */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

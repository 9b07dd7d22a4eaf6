/**
 * Little-endian byte writing and bounds-checked reading for the ledger formats. Every read failure
 * is a LedgerError that names the field and its offset, so a bad file points at the bad byte.
 */
import { Buffer } from "node:buffer";
import zlib from "node:zlib";
import { LedgerError } from "./errors.ts";

const TWO_32 = 2 ** 32;

/** Collects chunks and concatenates them once; cheaper than growing one buffer. */
export class ByteWriter {
  private readonly parts: Uint8Array[] = [];
  private size = 0;

  get length(): number {
    return this.size;
  }

  u8(value: number): void {
    this.bytes(Uint8Array.of(value));
  }

  u16(value: number): void {
    const b = Buffer.allocUnsafe(2);
    b.writeUInt16LE(value, 0);
    this.bytes(b);
  }

  u32(value: number): void {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32LE(value, 0);
    this.bytes(b);
  }

  /** Callers check the range first (checkU64); JS numbers are exact only up to 2^53-1. */
  u64(value: number): void {
    const b = Buffer.allocUnsafe(8);
    b.writeUInt32LE(value % TWO_32, 0);
    b.writeUInt32LE(Math.floor(value / TWO_32), 4);
    this.bytes(b);
  }

  bytes(data: Uint8Array): void {
    this.parts.push(data);
    this.size += data.length;
  }

  finish(): Uint8Array {
    return concatBytes(this.parts);
  }
}

/** Reads fields from `data`; `base` is added to offsets in error messages. */
export class ByteReader {
  pos = 0;
  private readonly view: Buffer;

  constructor(
    readonly data: Uint8Array,
    private readonly what: string,
    private readonly base = 0,
  ) {
    this.view = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  }

  get remaining(): number {
    return this.data.length - this.pos;
  }

  fail(message: string, at = this.pos): never {
    throw new LedgerError(`${this.what}: ${message} at byte ${this.base + at}`);
  }

  private need(n: number, field: string): number {
    if (this.remaining < n) {
      this.fail(`truncated ${field}: needs ${n} bytes, ${this.remaining} left`);
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u8(field: string): number {
    return this.view.readUInt8(this.need(1, field));
  }

  u16(field: string): number {
    return this.view.readUInt16LE(this.need(2, field));
  }

  u32(field: string): number {
    return this.view.readUInt32LE(this.need(4, field));
  }

  /** A u64 that must fit a JS safe integer (<= 2^53-1). */
  u64(field: string): number {
    const at = this.need(8, field);
    const low = this.view.readUInt32LE(at);
    const high = this.view.readUInt32LE(at + 4);
    if (high >= 2 ** 21) this.fail(`${field} exceeds 2^53-1`, at);
    return high * TWO_32 + low;
  }

  bytes(n: number, field: string): Uint8Array {
    const at = this.need(n, field);
    return this.data.subarray(at, at + n);
  }

  utf8(n: number, field: string): string {
    const at = this.pos;
    const raw = this.bytes(n, field);
    try {
      return strictUtf8.decode(raw);
    } catch {
      return this.fail(`${field} is not valid UTF-8`, at);
    }
  }

  end(): void {
    if (this.remaining !== 0) this.fail(`${this.remaining} unexpected trailing bytes`);
  }
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();
// In a /u regex a valid surrogate pair is one code point, so only unpaired halves match.
const LONE_SURROGATE = /\p{Surrogate}/u;

/** UTF-8 bytes of a string that must be well formed (no lone surrogates, which UTF-8 cannot hold). */
export function utf8Bytes(text: string, field: string): Uint8Array {
  if (LONE_SURROGATE.test(text)) throw new LedgerError(`${field} contains a lone surrogate`);
  return utf8Encoder.encode(text);
}

export function isU64(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

export function checkU64(value: number, field: string): void {
  if (!isU64(value)) {
    throw new LedgerError(`${field} must be an integer in [0, 2^53-1], got ${value}`);
  }
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/** A fresh plain Uint8Array (not a Buffer, not a slice of Node's shared pool). */
export function concatBytes(parts: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const part of parts) size += part.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** The same memory as a plain Uint8Array, so slices of it are plain too (Buffers compare unequal). */
export function plainView(data: Uint8Array): Uint8Array {
  return data.constructor === Uint8Array
    ? data
    : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

// Byte by byte rather than through a Buffer view: these run several times per entry, and a
// view is an object to allocate each time.
function checkU32At(data: Uint8Array, at: number): void {
  if (!Number.isInteger(at) || at < 0 || at + 4 > data.length) {
    throw new RangeError(`offset ${at} is outside the ${data.length} bytes for a u32`);
  }
}

export function u32le(data: Uint8Array, at: number): number {
  checkU32At(data, at);
  return (data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16)) + data[at + 3]! * 0x1000000;
}

export function putU32le(data: Uint8Array, at: number, value: number): void {
  checkU32At(data, at);
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`${value} is not a u32`);
  }
  data[at] = value & 0xff;
  data[at + 1] = (value >>> 8) & 0xff;
  data[at + 2] = (value >>> 16) & 0xff;
  data[at + 3] = (value >>> 24) & 0xff;
}

/** CRC-32 (IEEE 802.3, the zlib/PNG polynomial). zlib.crc32 is native from Node 20.15. */
export const crc32: (data: Uint8Array) => number =
  typeof zlib.crc32 === "function" ? (data) => zlib.crc32(data) : tableCrc32;

let crcTable: Uint32Array | undefined;

function tableCrc32(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const byte of data) crc = crcTable[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

export function isAllZero(data: Uint8Array): boolean {
  for (const byte of data) if (byte !== 0) return false;
  return true;
}

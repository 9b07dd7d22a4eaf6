import type { Tx, TxMap } from "../kv/index.ts";

/** Converts between app values and the bytes the store keeps. */
export interface Codec<T> {
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export const stringCodec: Codec<string> = {
  encode: (value) => encoder.encode(value),
  decode: (bytes) => decoder.decode(bytes),
};

export function jsonCodec<T>(): Codec<T> {
  return {
    encode: (value) => encoder.encode(JSON.stringify(value)),
    decode: (bytes) => JSON.parse(decoder.decode(bytes)) as T,
  };
}

/** Unsigned 64-bit integers, big-endian, so byte order is numeric order and range scans work. */
export const u64Codec: Codec<number> = {
  encode(value) {
    if (!Number.isSafeInteger(value) || value < 0)
      throw new RangeError(`not an unsigned safe integer: ${value}`);
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(value));
    return bytes;
  },
  decode(bytes) {
    if (bytes.length !== 8) throw new RangeError("a u64 key is 8 bytes");
    return Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0));
  },
};

/** A map of a transaction seen through codecs. */
export class TypedMap<K, V> {
  private readonly raw: TxMap;
  constructor(
    tx: Tx,
    name: string,
    private readonly keys: Codec<K>,
    private readonly values: Codec<V>,
  ) {
    this.raw = tx.map(name);
  }

  get(key: K): V | undefined {
    const bytes = this.raw.get(this.keys.encode(key));
    return bytes === undefined ? undefined : this.values.decode(bytes);
  }
  has(key: K): boolean {
    return this.raw.has(this.keys.encode(key));
  }
  set(key: K, value: V): void {
    this.raw.set(this.keys.encode(key), this.values.encode(value));
  }
  delete(key: K): boolean {
    return this.raw.delete(this.keys.encode(key));
  }
  size(): number {
    return this.raw.size();
  }
  range(opts: { start?: K; end?: K; limit?: number; after?: string } = {}): {
    entries: Array<[K, V]>;
    next?: string;
  } {
    const page = this.raw.range({
      start: opts.start === undefined ? undefined : this.keys.encode(opts.start),
      end: opts.end === undefined ? undefined : this.keys.encode(opts.end),
      limit: opts.limit,
      after: opts.after,
    });
    return {
      entries: page.entries.map(([k, v]) => [this.keys.decode(k), this.values.decode(v)]),
      ...(page.next === undefined ? {} : { next: page.next }),
    };
  }
}

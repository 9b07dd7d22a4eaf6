import type { GasParams } from "./table.ts";

/**
 * Past this many bytes of memory the expansion costs more gas than any transaction can carry
 * (a 30M gas limit pays for about 4 MB): such an access is out of gas, which ethereumjs reports.
 */
const MAX_BYTES = 1n << 26n;

/** Thrown for anything the fast interpreter leaves to ethereumjs (its frame is run again there). */
export class Fallback {
  constructor(readonly reason: string) {}
}

/** A frame's memory, metered as ethereumjs meters it (`subMemUsage`: words * 3 + words^2 / 512). */
/**
 * One buffer for every frame's memory: frames run one at a time (runFrame is synchronous and never
 * nests), and nothing keeps a view of it past its frame (`read` copies). Allocating a fresh
 * kilobyte per frame showed in profiles (an off-heap allocation and its collection).
 */
let shared = new Uint8Array(1024);
let sharedView: DataView = new DataView(shared.buffer);
/** How much of `shared` the last frame may have written (zeroed before the next one). */
let dirty = 0;

export class Memory {
  bytes: Uint8Array;
  /** `bytes` for whole-word reads and writes (src/evm/fast/words.ts). */
  view: DataView;
  /** Words paid for (MSIZE / 32). */
  words = 0;
  /** The cost of `words`, already charged. */
  private paid = 0;

  constructor(private readonly params: GasParams) {
    shared.fill(0, 0, dirty);
    dirty = 0;
    this.bytes = shared;
    this.view = sharedView;
  }

  /**
   * The gas to extend memory over [offset, offset + length), which it records as paid, and
   * makes the bytes addressable. A zero length touches nothing (and costs nothing).
   */
  expand(offset: bigint, length: bigint): number {
    if (length === 0n) return 0;
    const end = offset + length;
    if (end > MAX_BYTES) throw new Fallback("memory beyond any gas limit");
    const words = Math.ceil(Number(end) / 32);
    if (words <= this.words) return 0;
    const cost = words * this.params.memory + Math.floor((words * words) / this.params.quadDivisor);
    const charge = cost - this.paid;
    this.paid = cost;
    this.words = words;
    const size = words * 32;
    if (size > this.bytes.length) {
      let capacity = this.bytes.length * 2;
      while (capacity < size) capacity *= 2;
      const grown = new Uint8Array(capacity);
      grown.set(this.bytes);
      this.bytes = grown;
      this.view = new DataView(grown.buffer);
      // Large buffers are not kept: a frame that used megabytes would keep them forever.
      if (capacity <= 1 << 16) {
        shared = grown;
        sharedView = this.view;
      }
    }
    if (this.bytes === shared && size > dirty) dirty = size;
    return charge;
  }

  /** A copy of [offset, offset + length) (expanded before). */
  read(offset: number, length: number): Uint8Array {
    return this.bytes.slice(offset, offset + length);
  }

  /**
   * Writes `length` bytes at `offset` from `source` starting at `from`; what lies past the end of
   * `source` is written as zeros (CALLDATACOPY and CODECOPY pad so).
   */
  copyIn(offset: number, source: Uint8Array, from: bigint, length: number): void {
    const start = from > BigInt(source.length) ? source.length : Number(from);
    const available = Math.min(length, source.length - start);
    if (available > 0) this.bytes.set(source.subarray(start, start + available), offset);
    this.bytes.fill(0, offset + Math.max(available, 0), offset + length);
  }
}

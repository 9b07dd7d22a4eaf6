import { performance } from "node:perf_hooks";
import type { EncodedSnapshot, SnapshotEncoder } from "../ledger/index.ts";

/**
 * How long one slice of snapshot encoding may hold the event loop. Requests, consensus messages
 * and disk callbacks run between slices, so a snapshot of a large store adds at most this much to
 * any request's latency instead of the whole encoding at once.
 */
export const SNAPSHOT_SLICE_MS = 2;
/** Entries encoded between two looks at the clock (a fraction of a millisecond of work). */
const ENTRIES_PER_CHECK = 512;

/**
 * One snapshot being encoded in slices, one per turn of the event loop (`setImmediate`), from an
 * immutable version of the store. `result` resolves to the file and its digest, or to undefined
 * once aborted (a rollback, a view change that dropped its entry, an installed snapshot, shutdown).
 */
export class SnapshotJob {
  readonly result: Promise<EncodedSnapshot | undefined>;
  /** Slices run so far (for tests and benchmarks). */
  slices = 0;
  private settle!: (value: EncodedSnapshot | undefined) => void;
  private fail!: (error: unknown) => void;
  private aborted = false;

  constructor(
    /** The snapshot's seqno (a signature entry) and view: the entry it is of. */
    readonly seqno: number,
    readonly view: number,
    /** Keys in the store there (the next snapshot's interval follows from it). */
    readonly keys: number,
    private readonly encoder: SnapshotEncoder,
    private readonly sliceMs = SNAPSHOT_SLICE_MS,
  ) {
    this.result = new Promise((resolve, reject) => {
      this.settle = resolve;
      this.fail = reject;
    });
    setImmediate(() => this.slice());
  }

  get active(): boolean {
    return !this.aborted && !this.encoder.done;
  }

  abort(): void {
    if (!this.active) return;
    this.aborted = true;
    this.settle(undefined);
  }

  private slice(): void {
    if (this.aborted) return;
    this.slices++;
    const until = performance.now() + this.sliceMs;
    try {
      do {
        if (this.encoder.step(ENTRIES_PER_CHECK)) {
          this.settle(this.encoder.encoded());
          return;
        }
      } while (performance.now() < until);
    } catch (error) {
      this.aborted = true;
      this.fail(error);
      return;
    }
    setImmediate(() => this.slice());
  }
}

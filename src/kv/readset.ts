/**
 * What a transaction read from its snapshot, per map, for optimistic concurrency control:
 * single keys (present or absent) and key intervals `[lo, hi)` (`hi: null` = unbounded).
 * A committed write to any of them after the snapshot makes the transaction conflict.
 */
export class MapReads {
  readonly points = new Set<string>();
  readonly ranges: Array<[lo: string, hi: string | null]> = [];

  /** True if any of `written` (sorted ascending, unique) is a key this map's reads depended on. */
  overlaps(written: readonly string[]): boolean {
    if (this.points.size > 0) {
      if (written.length <= this.points.size) {
        for (const key of written) if (this.points.has(key)) return true;
      } else {
        for (const key of this.points) {
          const i = lowerBound(written, key);
          if (i < written.length && written[i] === key) return true;
        }
      }
    }
    for (const [lo, hi] of this.ranges) {
      const i = lowerBound(written, lo);
      const first = written[i];
      if (first !== undefined && (hi === null || first < hi)) return true;
    }
    return false;
  }
}

/** Keys written by one committed version, per map, each list sorted ascending. */
export type WrittenKeys = ReadonlyMap<string, readonly string[]>;

export function readsConflict(reads: ReadonlyMap<string, MapReads>, written: WrittenKeys): boolean {
  for (const [name, mapReads] of reads) {
    const keys = written.get(name);
    if (keys !== undefined && mapReads.overlaps(keys)) return true;
  }
  return false;
}

/** Index of the first element `>= key`. */
function lowerBound(sorted: readonly string[], key: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

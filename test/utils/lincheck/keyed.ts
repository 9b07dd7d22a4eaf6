/** Helpers for models whose state is a map from string keys, whose keys never interact. */
import type { Operation } from "./types.ts";

/** Splits a history into one part per key, in order of each key's first operation. */
export function partitionByKey<I extends { key: string }, O>(
  history: readonly Operation<I, O>[],
): Operation<I, O>[][] {
  const parts = new Map<string, Operation<I, O>[]>();
  for (const op of history) {
    let part = parts.get(op.input.key);
    if (part === undefined) {
      part = [];
      parts.set(op.input.key, part);
    }
    part.push(op);
  }
  return [...parts.values()];
}

export function mapEqual(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

/**
 * A memo hash for a map: equal maps hash alike whatever their insertion order. It looks only at
 * each key, its value's length and the value's tail, because values that grow by appending get
 * long and hashing them whole would dominate the search; different maps may collide, which costs
 * only an equality check.
 */
export function mapHash(m: ReadonlyMap<string, string>): string {
  let sum = 0;
  for (const [k, v] of m) {
    sum = (sum + stringHash(`${k}\u0000${v.length}\u0000${v.slice(-24)}`)) | 0;
  }
  return `${m.size}:${sum}`;
}

/** A readable, canonical rendering of a map, for counter-examples. */
export function describeMap(m: ReadonlyMap<string, string>): string {
  return JSON.stringify(Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
}

/** FNV-1a over UTF-16 code units. */
function stringHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h;
}

/** A copy of `m` with `key` set to `value`, or removed when `value` is undefined. */
export function withKey(
  m: ReadonlyMap<string, string>,
  key: string,
  value: string | undefined,
): ReadonlyMap<string, string> {
  const copy = new Map(m);
  if (value === undefined) copy.delete(key);
  else copy.set(key, value);
  return copy;
}

// What the Shamir and recovery-share tests feed in: a reproducible random source, so that a failing
// split can be replayed, and every subset of some shares, to try each way of combining them.
import { createHash } from "node:crypto";

/** A deterministic random source: SHA-256 in counter mode over a seed. */
export function seededRandom(seed: number | string): (n: number) => Uint8Array {
  let counter = 0;
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 32) {
      const block = createHash("sha256").update(`${seed}:${counter++}`).digest();
      out.set(block.subarray(0, Math.min(32, n - i)), i);
    }
    return out;
  };
}

/** Every subset of `items` with `size` members, in order. */
export function subsets<T>(items: T[], size: number): T[][] {
  if (size === 0) return [[]];
  const out: T[][] = [];
  items.forEach((item, i) => {
    for (const rest of subsets(items.slice(i + 1), size - 1)) out.push([item, ...rest]);
  });
  return out;
}

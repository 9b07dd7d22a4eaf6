import assert from "node:assert/strict";
import { test } from "node:test";
import { type LogFilter, markSeen, rewind } from "../../src/evm/filters.ts";

/** A node's chain as block number -> hash; a rollback replaces the tail. */
function chain(hashes: string[]): (n: bigint) => string | undefined {
  return (n) => hashes[Number(n) - 1];
}

function logFilter(): LogFilter {
  return {
    kind: "logs",
    fromBlock: "latest",
    toBlock: "latest",
    addresses: [],
    topics: [],
    seen: 0n,
    hashes: new Map(),
    touched: 0,
  };
}

test("a filter whose reported blocks were rolled back reports the blocks now at their numbers", () => {
  const f = logFilter();
  // Installed on a backup whose head (blocks 4 and 5) was not yet committed.
  markSeen(f, 5n, chain(["a1", "a2", "a3", "a4", "a5"]));
  assert.equal(f.seen, 5n);
  // A new primary rolled back 4 and 5 and committed other transactions as 4 and 5 (and 6).
  const after = chain(["a1", "a2", "a3", "b4", "b5", "b6"]);
  rewind(f, after);
  assert.equal(f.seen, 3n, "the cursor goes back to the last block still on the chain");
  markSeen(f, 6n, after);
  rewind(f, after);
  assert.equal(f.seen, 6n, "an unchanged chain keeps the cursor");
});

test("a shorter chain after a rollback moves the cursor below its head", () => {
  const f = logFilter();
  markSeen(f, 4n, chain(["a1", "a2", "a3", "a4"]));
  rewind(f, chain(["a1", "a2"]));
  assert.equal(f.seen, 2n);
});

test("a filter remembers only the last 64 reported blocks", () => {
  const f = logFilter();
  const hashes = Array.from({ length: 200 }, (_, i) => `a${i + 1}`);
  markSeen(f, 100n, chain(hashes));
  markSeen(f, 200n, chain(hashes));
  assert.equal(f.hashes.size, 64);
  assert.equal(Math.min(...[...f.hashes.keys()].map(Number)), 137);
  // A rollback deeper than remembered stops just below the oldest remembered block.
  rewind(f, chain(hashes.slice(0, 100)));
  assert.equal(f.seen, 136n);
});

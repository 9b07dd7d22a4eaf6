import assert from "node:assert/strict";
import { test } from "node:test";
import { blockNumberFor, type Filter, Filters, type LogFilter } from "../../src/evm/filters.ts";

// The rule behind eth_blockNumber (src/evm/filters.ts), on a fake clock: a chain whose head is
// `head`, a log in each block of `logsAt`, matched by every filter not listed in `deaf`.

function setup() {
  const clock = { now: 0 };
  const filters = new Filters(() => clock.now);
  const logsAt = new Set<bigint>();
  const deaf = new Set<Filter>();
  const install = (owner: string, seen: bigint): LogFilter => {
    const f: LogFilter = {
      kind: "logs",
      fromBlock: "latest",
      toBlock: "latest",
      addresses: [],
      topics: [],
      seen,
      hashes: new Map(),
      touched: 0,
      owner,
    };
    filters.add(f);
    return f;
  };
  let head = 5n;
  const changes = (f: Filter) => !deaf.has(f) && [...logsAt].some((n) => n > f.seen && n <= head);
  return {
    clock,
    filters,
    logsAt,
    deaf,
    install,
    setHead: (n: bigint) => {
      head = n;
    },
    read: (owner: string) => blockNumberFor(filters, owner, head, changes),
  };
}

test("after a poll, the first read that finds changes is held at the cursor, the next is the head", () => {
  const s = setup();
  const f = s.install("alice", 5n);
  assert.equal(s.read("alice"), 5n);
  s.filters.polled(f);
  assert.equal(s.read("alice"), 5n, "a read with nothing pending (another client's) keeps the hold");
  s.logsAt.add(6n);
  s.setHead(6n);
  assert.equal(s.read("bob"), 6n, "another user's reads are not held");
  assert.equal(s.read("alice"), 5n, "held at the cursor");
  assert.equal(s.read("alice"), 6n);
  assert.equal(s.read("alice"), 6n, "one held answer per poll");
});

test("a hold lapses 5 s after the poll, and is never below a number answered before", () => {
  const s = setup();
  const f = s.install("alice", 5n);
  s.filters.polled(f);
  s.clock.now = 5_001;
  s.logsAt.add(6n);
  s.setHead(6n);
  assert.equal(s.read("alice"), 6n, "lapsed");
  // Polled at 6 while the head is 8 and alice was told 6: the hold cannot go below 6.
  s.setHead(8n);
  s.logsAt.add(7n);
  f.seen = 4n;
  s.filters.polled(f);
  assert.equal(s.read("alice"), 6n);
  assert.equal(s.read("alice"), 8n);
  // A rollback below what alice was told: she keeps reading the highest number she was answered.
  s.setHead(7n);
  assert.equal(s.read("alice"), 8n);
});

test("with several armed filters, one held answer at the lowest pending cursor serves them all", () => {
  const s = setup();
  const low = s.install("alice", 3n);
  const high = s.install("alice", 5n);
  const quiet = s.install("alice", 2n);
  for (const f of [low, high, quiet]) s.filters.polled(f);
  s.logsAt.add(6n);
  s.setHead(6n);
  // `quiet` (cursor 2) matches nothing: the hold is at the lowest cursor with changes.
  s.deaf.add(quiet);
  assert.equal(s.read("alice"), 3n);
  assert.equal(s.read("alice"), 6n);
  assert.equal(s.read("alice"), 6n);
});

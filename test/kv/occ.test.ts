import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { type CommitResult, Store } from "../../src/kv/index.ts";
import { b, put, str } from "./util.ts";

function seqnoOf(r: CommitResult): number | null {
  assert.equal(r.ok, true, "expected the commit to succeed");
  return r.ok ? r.seqno : null;
}

test("seqnos are contiguous from 1 and read-only commits consume none", () => {
  const store = new Store();
  assert.equal(store.version, 0);
  const ro = store.begin();
  ro.map("m").get(b("k"));
  assert.deepEqual(store.commit(ro), { ok: true, seqno: null, readVersion: 0 });
  assert.equal(put(store, "m", { a: "1" }), 1);
  const empty = store.begin();
  assert.equal(empty.isReadOnly, true);
  empty.map("m").delete(b("absent"));
  assert.equal(empty.isReadOnly, true, "deleting an absent key writes nothing");
  assert.deepEqual(store.commit(empty), { ok: true, seqno: null, readVersion: 1 });
  assert.equal(put(store, "m", { b: "2" }), 2);
  assert.equal(put(store, "other", { c: "3" }), 3);
  assert.equal(store.version, 3);
});

test("commit returns the write set, sorted by map name bytes then key bytes", () => {
  const store = new Store();
  put(store, "m", { gone: "x" });
  const tx = store.begin();
  tx.map("z").set(b("b"), b("1"));
  tx.map("z").set(b("a"), b("2"));
  tx.map("\u00e9").set(b("k"), b("3")); // U+00E9 sorts after "z" in UTF-8
  tx.map("m").delete(b("gone"));
  tx.map("empty").delete(b("never"));
  tx.map("m").set(b("tmp"), b("t"));
  tx.map("m").delete(b("tmp"));
  const expected = [
    {
      name: "m",
      updates: [
        { key: b("gone"), value: null },
        { key: b("tmp"), value: null },
      ],
    },
    {
      name: "z",
      updates: [
        { key: b("a"), value: b("2") },
        { key: b("b"), value: b("1") },
      ],
    },
    { name: "\u00e9", updates: [{ key: b("k"), value: b("3") }] },
  ];
  assert.deepEqual(tx.writeSet(), expected);
  assert.deepEqual(store.commit(tx), { ok: true, seqno: 2, writeSet: expected });
  assert.deepEqual(store.mapNames(), ["m", "z", "\u00e9"]);
});

test("a transaction that read a key another transaction then committed conflicts", () => {
  const store = new Store();
  put(store, "m", { x: "1" });
  const t1 = store.begin();
  const t2 = store.begin();
  const x = str(t1.map("m").get(b("x")));
  t1.map("m").set(b("x"), b(`${x}+1`));
  t2.map("m").set(b("x"), b("5"));
  assert.equal(seqnoOf(store.commit(t2)), 2);
  assert.deepEqual(store.commit(t1), { ok: false, reason: "conflict" });
  assert.equal(str(store.read("m", b("x"))), "5");
});

test("reading an absent key that another transaction creates conflicts", () => {
  const store = new Store();
  const t1 = store.begin();
  const t2 = store.begin();
  if (!t1.map("m").has(b("x"))) t1.map("m").set(b("y"), b("x was absent"));
  t2.map("m").set(b("x"), b("1"));
  store.commit(t2);
  assert.deepEqual(store.commit(t1), { ok: false, reason: "conflict" });
});

test("every kind of read is checked: has, getVersionOfPreviousWrite, delete, size", () => {
  const reads: Array<(s: Store, tx: ReturnType<Store["begin"]>) => void> = [
    (_s, tx) => tx.map("m").has(b("x")),
    (_s, tx) => tx.map("m").getVersionOfPreviousWrite(b("x")),
    (_s, tx) => tx.map("m").delete(b("x")),
    (_s, tx) => tx.map("m").size(),
  ];
  for (const read of reads) {
    const store = new Store();
    put(store, "m", { a: "0" });
    const t1 = store.begin();
    read(store, t1);
    t1.map("out").set(b("k"), b("v"));
    put(store, "m", { x: "1" });
    assert.deepEqual(store.commit(t1), { ok: false, reason: "conflict" }, read.toString());
  }
});

test("disjoint keys and blind writes do not conflict", () => {
  const store = new Store();
  put(store, "m", { a: "1", b: "1" });
  const t1 = store.begin();
  const t2 = store.begin();
  const t3 = store.begin();
  t1.map("m").set(b("a"), b(`${str(t1.map("m").get(b("a")))}!`));
  t2.map("m").set(b("b"), b(`${str(t2.map("m").get(b("b")))}?`));
  t3.map("m").set(b("a"), b("blind")); // writes without reading: serializable after t1
  t3.map("other").get(b("a")); // same key name in another map is a different key
  assert.equal(seqnoOf(store.commit(t1)), 2);
  assert.equal(seqnoOf(store.commit(t2)), 3);
  assert.equal(seqnoOf(store.commit(t3)), 4);
  assert.equal(str(store.read("m", b("a"))), "blind");
  assert.equal(str(store.read("m", b("b"))), "1?");
});

test("a read answered by the transaction's own earlier write does not conflict", () => {
  const store = new Store();
  const t1 = store.begin();
  t1.map("m").set(b("x"), b("mine"));
  assert.equal(str(t1.map("m").get(b("x"))), "mine");
  put(store, "m", { x: "theirs" });
  assert.equal(seqnoOf(store.commit(t1)), 2);
  assert.equal(str(store.read("m", b("x"))), "mine");
});

test("a phantom inserted into a scanned range conflicts; one outside it does not", () => {
  const store = new Store();
  put(store, "m", { a: "1", c: "1", e: "1", g: "1" });
  const scan = (tx: ReturnType<Store["begin"]>) => {
    const r = tx.map("m").range({ start: b("b"), end: b("f") });
    tx.map("m").set(b("count"), b(String(r.entries.length)));
  };
  const inside = store.begin();
  const outside = store.begin();
  scan(inside);
  scan(outside);
  put(store, "m", { d: "phantom" });
  assert.deepEqual(store.commit(inside), { ok: false, reason: "conflict" });

  const store2 = new Store();
  put(store2, "m", { a: "1", c: "1", e: "1", g: "1" });
  const t = store2.begin();
  scan(t);
  put(store2, "m", { f: "at the exclusive end", a: "before the start" });
  assert.equal(seqnoOf(store2.commit(t)), 3);
});

test("a paged scan covers only what it returned plus the key that decided `next`", () => {
  const store = new Store();
  put(store, "m", { a: "1", b: "1", c: "1", d: "1", e: "1" });
  const t1 = store.begin();
  const page = t1.map("m").range({ limit: 2 }); // returns a, b; peeks c
  assert.ok(page.next);
  t1.map("out").set(b("k"), b("v"));
  put(store, "m", { d: "beyond the page" });
  assert.equal(seqnoOf(store.commit(t1)), 3);

  const t2 = store.begin();
  t2.map("m").range({ limit: 2 });
  t2.map("out").set(b("k"), b("v"));
  put(store, "m", { c: null }); // removing the peeked key could change `next`
  assert.deepEqual(store.commit(t2), { ok: false, reason: "conflict" });
});

test("an old open transaction keeps seeing its snapshot after newer commits", async () => {
  const store = new Store();
  put(store, "m", { a: "1", b: "1" });
  const old = store.begin();
  assert.equal(str(old.map("m").get(b("a"))), "1");
  // Another handler runs while `old` awaits something.
  await Promise.resolve();
  put(store, "m", { a: "2", c: "2" });
  put(store, "m", { b: null });
  await Promise.resolve();
  const m = old.map("m");
  assert.equal(str(m.get(b("a"))), "1");
  assert.equal(str(m.get(b("b"))), "1");
  assert.equal(m.get(b("c")), undefined);
  assert.equal(m.size(), 2);
  assert.equal(old.startVersion, 1);
  assert.deepEqual(store.commit(old), { ok: true, seqno: null, readVersion: 1 });
  assert.equal(store.begin().map("m").size(), 2);
});

test("rolling back below a transaction's snapshot makes it conflict, even at the same version", () => {
  const store = new Store();
  put(store, "m", { a: "1" });
  put(store, "m", { b: "2" });
  const t = store.begin(); // snapshot at version 2
  t.map("m").set(b("c"), b("3"));
  store.rollback(1);
  put(store, "m", { z: "other history" }); // a different version 2
  assert.equal(store.version, 2);
  assert.deepEqual(store.commit(t), { ok: false, reason: "conflict" });

  const u = store.begin(); // snapshot at the new version 2
  u.map("m").set(b("c"), b("3"));
  put(store, "m", { d: "4" });
  store.rollback(2); // back to u's own snapshot: still valid
  assert.equal(seqnoOf(store.commit(u)), 3);
});

test("a transaction older than the conflict window conflicts", () => {
  const store = new Store({ conflictWindow: 3 });
  const t = store.begin();
  t.map("m").set(b("mine"), b("v"));
  for (let i = 0; i < 3; i++) put(store, "other", { [String(i)]: "x" });
  const t2 = store.begin();
  t2.map("m").set(b("mine2"), b("v"));
  for (let i = 0; i < 3; i++) put(store, "other", { [String(i)]: "y" });
  assert.equal(seqnoOf(store.commit(t2)), 7, "exactly at the window: still checked");
  put(store, "other", { late: "z" });
  assert.deepEqual(store.commit(t), { ok: false, reason: "conflict" });
  assert.throws(() => new Store({ conflictWindow: 0 }), /conflictWindow/);
});

// Serializability: interleave transfers between accounts; money is conserved and every committed
// transaction's effect equals running it serially in seqno order.
test("property: interleaved transfers commit serializably", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          from: fc.nat(3),
          to: fc.nat(3),
          amount: fc.nat(5),
          beginAt: fc.nat(6),
          commitAt: fc.nat(6),
        }),
        { minLength: 1, maxLength: 12 },
      ),
      (transfers) => {
        const store = new Store();
        put(store, "acct", { "0": "20", "1": "20", "2": "20", "3": "20" });
        type Step = { at: number; kind: "begin" | "commit"; i: number };
        const steps: Step[] = [];
        transfers.forEach((t, i) => {
          steps.push({ at: t.beginAt, kind: "begin", i }, { at: t.beginAt + t.commitAt, kind: "commit", i });
        });
        steps.sort((x, y) => x.at - y.at || (x.kind === y.kind ? x.i - y.i : x.kind === "begin" ? -1 : 1));
        const txs = new Map<number, ReturnType<Store["begin"]>>();
        const committed: number[] = [];
        for (const s of steps) {
          const t = transfers[s.i]!;
          if (s.kind === "begin") {
            const tx = store.begin();
            const m = tx.map("acct");
            const from = Number(str(m.get(b(String(t.from)))));
            if (from >= t.amount && t.from !== t.to) {
              const to = Number(str(m.get(b(String(t.to)))));
              m.set(b(String(t.from)), b(String(from - t.amount)));
              m.set(b(String(t.to)), b(String(to + t.amount)));
            }
            txs.set(s.i, tx);
          } else {
            const r = store.commit(txs.get(s.i)!);
            if (r.ok && r.seqno !== null) committed.push(s.i);
          }
        }
        // Replay the committed ones serially, in commit order, on a model.
        const model = [20, 20, 20, 20];
        for (const i of committed) {
          const t = transfers[i]!;
          if (model[t.from]! >= t.amount && t.from !== t.to) {
            model[t.from]! -= t.amount;
            model[t.to]! += t.amount;
          }
        }
        assert.deepEqual(
          [0, 1, 2, 3].map((a) => Number(str(store.read("acct", b(String(a)))))),
          model,
        );
      },
    ),
  );
});

import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import type { StoreSnapshot } from "../../src/kv/index.ts";
import { decodeEntry, type ReceiptLookup } from "../../src/ledger/index.ts";
import type { SimNode } from "./node.ts";
import { Prng } from "./prng.ts";
import { Simulation } from "./world.ts";

/**
 * The engine checks must fail when what they check is wrong: each test runs them on a node of a
 * finished run with one thing tampered with.
 */
describe("simulator engine checks", () => {
  let sim: Simulation;
  let node: SimNode;
  before(() => {
    sim = new Simulation({ seed: 4 });
    const result = sim.run();
    assert.ok(result.ok, result.failure?.message);
    node = [...sim.nodes.values()].find((n) => n.alive && !n.retired && n.state!.commitSeqno > 3)!;
    assert.ok(node, "no live node committed anything");
  });

  /** Runs `check` with the node's receipts (from memory or rebuilt from its ledger) passed through `tamper`. */
  function withReceipts(tamper: (lookup: ReceiptLookup & { status: "ok" }) => void, check: () => void): void {
    const state = node.state!;
    const original = state.receipt.bind(state);
    const rebuild = state.receiptFromEntries.bind(state);
    state.receipt = (view, seqno) => {
      const lookup = original(view, seqno);
      if (lookup.status === "ok") tamper(lookup);
      return lookup;
    };
    state.receiptFromEntries = (view, seqno, entries) => {
      const lookup = rebuild(view, seqno, entries);
      if (lookup.status === "ok") tamper(lookup);
      return lookup;
    };
    try {
      check();
    } finally {
      state.receipt = original;
      state.receiptFromEntries = rebuild;
    }
  }

  /** The receipt of `seqno` as the checker gets it: from memory, or rebuilt from the node's ledger. */
  function receiptOf(seqno: number): ReceiptLookup {
    const state = node.state!;
    const lookup = state.receipt(state.viewOf(seqno), seqno);
    if (lookup.status !== "Archived") return lookup;
    const entries = node.disk
      .written()
      .entries.filter((e) => e.seqno >= lookup.from)
      .map((e) => decodeEntry(e.data));
    return state.receiptFromEntries(state.viewOf(seqno), seqno, entries);
  }

  it("receipts of committed transactions verify, JSON and COSE", () => {
    const before = sim.checker.stats.receiptsVerified;
    sim.checker.checkReceipts(node, new Prng(1), 5);
    assert.equal(sim.checker.stats.receiptsVerified, before + 5);
  });

  it("a JSON receipt with a bad node signature fails", () => {
    withReceipts(
      (lookup) => {
        const sig = Buffer.from(lookup.json.signature, "base64");
        sig[sig.length - 1]! ^= 1;
        lookup.json.signature = sig.toString("base64");
      },
      () =>
        assert.throws(
          () => sim.checker.checkReceipts(node, new Prng(1), 1),
          /JSON receipt for .* does not verify/,
        ),
    );
  });

  it("a COSE receipt with a bad service signature fails", () => {
    withReceipts(
      (lookup) => {
        lookup.cose = Uint8Array.from(lookup.cose);
        lookup.cose[lookup.cose.length - 1]! ^= 1;
      },
      () =>
        assert.throws(
          () => sim.checker.checkReceipts(node, new Prng(1), 1),
          /COSE receipt for .* does not verify/,
        ),
    );
  });

  it("a valid receipt for another transaction fails", () => {
    const other = receiptOf(1);
    assert.equal(other.status, "ok");
    withReceipts(
      (lookup) => {
        if (other.status === "ok") Object.assign(lookup, { json: other.json, cose: other.cose });
      },
      () =>
        assert.throws(
          () => sim.checker.checkReceipts(node, new Prng(2), 5),
          /receipt for .* does not prove the committed/,
        ),
    );
  });

  it("a ledger that does not replay, or replays to another state, fails", () => {
    sim.checker.checkReplay(node);
    const written = node.disk.written.bind(node.disk);
    node.disk.written = () => {
      const ledger = written();
      const last = ledger.entries.at(-1)!;
      const data = Uint8Array.from(last.data);
      data[data.length - 10]! ^= 1;
      return { ...ledger, entries: [...ledger.entries.slice(0, -1), { ...last, data }] };
    };
    try {
      assert.throws(() => sim.checker.checkReplay(node), /ledger does not replay/);
    } finally {
      node.disk.written = written;
    }
    withStore(() =>
      assert.throws(
        () => sim.checker.checkReplay(node),
        /store at .* differs from the replay of its own ledger/,
      ),
    );
  });

  it("a store that differs from the replay of the committed ledger fails", () => {
    sim.checker.applied(node);
    withStore(() =>
      assert.throws(() => sim.checker.applied(node), /differs from the replay of the committed ledger/),
    );
  });

  /** Runs `check` while the node's committed store holds one extra key. */
  function withStore(check: () => void): void {
    const original = node.committedSnapshot.bind(node);
    node.committedSnapshot = (): StoreSnapshot => {
      const snapshot = original();
      return {
        ...snapshot,
        maps: [...snapshot.maps, { name: "zz.extra", entries: [[Uint8Array.of(1), Uint8Array.of(2), 1]] }],
      };
    };
    try {
      check();
    } finally {
      node.committedSnapshot = original;
    }
  }
});

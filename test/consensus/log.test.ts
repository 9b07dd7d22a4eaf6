import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { RaftLog } from "../../src/consensus/log.ts";
import { hasQuorum, quorumValue } from "../../src/consensus/quorum.ts";
import type { Entry } from "../../src/consensus/types.ts";

function entries(from: number, views: number[], signatures: number[] = []): Entry[] {
  return views.map((view, i) => ({
    seqno: from + i,
    view,
    isSignature: signatures.includes(from + i),
    data: new Uint8Array([i]),
  }));
}

describe("RaftLog", () => {
  const start = { seqno: 0, view: 0, config: ["a", "b", "c"] };

  it("indexes views, signatures and configurations, and keeps them through truncation", () => {
    const log = new RaftLog({ start, entries: entries(1, [1, 1, 2, 2, 2, 4, 4], [2, 5, 7]) });
    assert.equal(log.lastSeqno, 7);
    assert.equal(log.lastView, 4);
    assert.equal(log.firstSeqnoOfView(2), 3);
    assert.equal(log.firstSeqnoOfView(3), undefined);
    assert.equal(log.lastSeqnoWithViewAtMost(3, 7), 5);
    assert.equal(log.lastSeqnoWithViewAtMost(1, 7), 2);
    assert.equal(log.lastSeqnoWithViewAtMost(0, 7), 0);
    assert.equal(log.lastSignatureIn(0, 6), 5);
    assert.equal(log.lastSignatureIn(5, 6), undefined);
    log.truncateAfter(4);
    assert.equal(log.lastSeqno, 4);
    assert.equal(log.lastSignatureIn(0, 10), 2);
    assert.equal(log.lastSeqnoWithViewAtMost(9, 10), 4);
  });

  it("tracks the configuration in effect at each seqno and the active ones", () => {
    const log = new RaftLog({ start, entries: entries(1, [1, 1, 1, 1]) });
    log.append([{ seqno: 5, view: 1, isSignature: false, config: ["a", "b"], data: new Uint8Array() }]);
    log.append([{ seqno: 6, view: 1, isSignature: true, config: ["a", "d"], data: new Uint8Array() }]);
    assert.deepEqual(log.configAt(4), ["a", "b", "c"]);
    assert.deepEqual(log.configAt(5), ["a", "b"]);
    assert.deepEqual(log.latestConfig(), ["a", "d"]);
    assert.deepEqual(
      log.activeConfigs(4).map((c) => c.nodes),
      [
        ["a", "b", "c"],
        ["a", "b"],
        ["a", "d"],
      ],
    );
    assert.deepEqual(
      log.activeConfigs(5).map((c) => c.nodes),
      [
        ["a", "b"],
        ["a", "d"],
      ],
    );
    log.compact(5);
    assert.deepEqual(log.start, { seqno: 5, view: 1, config: ["a", "b"] });
    assert.deepEqual(log.configAt(5), ["a", "b"]);
    log.truncateAfter(5);
    assert.deepEqual(log.latestConfig(), ["a", "b"]);
  });

  it("refuses appends that break contiguity or go back in view", () => {
    const log = new RaftLog({ start, entries: entries(1, [2]) });
    assert.throws(() => log.append(entries(3, [2])), /seqno 3 to a log ending at 1/);
    assert.throws(() => log.append(entries(2, [1])), /view 1 after view 2/);
    assert.throws(() => log.truncateAfter(-1), /below the log start/);
  });

  it("agrees with a plain array model under random appends, truncations and compactions", () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant("append" as const),
        views: fc.array(fc.nat({ max: 2 }), { maxLength: 5 }),
      }),
      fc.record({ kind: fc.constant("truncate" as const), back: fc.nat({ max: 6 }) }),
      fc.record({ kind: fc.constant("compact" as const), back: fc.nat({ max: 6 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const log = new RaftLog({ start, entries: [] });
        let model: Entry[] = [];
        let base = 0;
        for (const o of ops) {
          if (o.kind === "append") {
            let view = log.lastView;
            const added = o.views.map((step, i) => {
              view += step;
              return {
                seqno: base + model.length + 1 + i,
                view,
                isSignature: step === 1,
                data: new Uint8Array(),
              };
            });
            log.append(added);
            model.push(...added);
          } else if (o.kind === "truncate") {
            const to = Math.max(base, base + model.length - o.back);
            log.truncateAfter(to);
            model = model.slice(0, to - base);
          } else {
            const to = Math.max(base, base + model.length - o.back);
            if (to > base) {
              log.compact(to);
              model = model.slice(to - base);
              base = to;
            }
          }
          assert.equal(log.lastSeqno, base + model.length);
          for (const e of model) assert.equal(log.viewAt(e.seqno), e.view);
          const sigs = model.filter((e) => e.isSignature).map((e) => e.seqno);
          assert.equal(log.lastSignatureIn(base, log.lastSeqno), sigs.at(-1));
          for (const v of [0, 1, 2, 3, 5]) {
            const expected = [...model].reverse().find((e) => e.view <= v)?.seqno ?? base;
            assert.equal(log.lastSeqnoWithViewAtMost(v, log.lastSeqno), expected);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("quorums", () => {
  it("needs a strict majority in every configuration", () => {
    assert.equal(
      hasQuorum([["a", "b", "c"]], (id) => id !== "c"),
      true,
    );
    assert.equal(
      hasQuorum([["a", "b", "c", "d"]], (id) => id === "a" || id === "b"),
      false,
    );
    assert.equal(
      hasQuorum(
        [
          ["a", "b", "c"],
          ["a", "d", "e"],
        ],
        (id) => ["a", "b", "c"].includes(id),
      ),
      false,
    );
    assert.equal(
      hasQuorum([[]], () => true),
      false,
    );
    assert.equal(
      hasQuorum([], () => true),
      false,
    );
  });

  it("quorumValue is the largest value a quorum of every configuration has reached", () => {
    const ids = ["a", "b", "c", "d", "e"];
    const config = fc.subarray(ids, { minLength: 1 });
    fc.assert(
      fc.property(
        fc.array(config, { minLength: 1, maxLength: 3 }),
        fc.array(fc.nat({ max: 20 }), { minLength: 5, maxLength: 5 }),
        (configs, values) => {
          const valueAt = (id: string) => values[ids.indexOf(id)]!;
          const result = quorumValue(configs, valueAt);
          assert.equal(
            hasQuorum(configs, (id) => valueAt(id) >= result),
            true,
          );
          assert.equal(
            hasQuorum(configs, (id) => valueAt(id) >= result + 1),
            false,
          );
        },
      ),
    );
  });
});

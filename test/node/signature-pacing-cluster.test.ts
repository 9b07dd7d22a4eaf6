import assert from "node:assert/strict";
import { test } from "node:test";
import { budget } from "../e2e/waits.ts";
import { Cluster } from "../helpers/cluster.ts";

/**
 * Signature pacing on real nodes (src/node/signing.ts): with a signature in flight, the writes
 * behind it wait for the next one, emitted half a commit round later or when it commits, with at
 * most `maxInFlight` (2) in flight. Nothing may be left waiting: every write of a burst answered
 * on commit is committed, a lone write afterwards commits promptly, the burst needed fewer
 * signatures than writes, and the bound on signatures in flight held throughout.
 */
test("paced signatures: a burst all commits under fewer signatures, then a lone write commits promptly", {
  timeout: budget(180_000),
}, async () => {
  const cluster = await Cluster.create();
  try {
    // Pipelined as a P-256 service is by default (this one is P-384, which paces strictly).
    const n0 = await cluster.startService({ openAtNodes: 2, signatures: { maxInFlight: 2 } });
    await cluster.join("n1", n0);
    await cluster.untilOpen();
    const primary = cluster.primary()!;
    assert.equal(primary, n0, "the node configured to pipeline is the primary");
    const { stats } = primary.node.signing;

    const before = stats.signatures;
    // Sampled every millisecond of the burst: the waiters' and the interval's signatures in flight.
    let mostInFlight = 0;
    const sampler = setInterval(() => {
      mostInFlight = Math.max(mostInFlight, primary.node.signing.signaturesInFlight);
    }, 1);
    sampler.unref();
    const writers = 32;
    const perWriter = 4;
    const statuses = await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        const out: number[] = [];
        for (let i = 0; i < perWriter; i++) {
          const res = await cluster.call(primary, "PUT", `/app/log/private?id=${1000 + w * perWriter + i}`, {
            body: { msg: "burst" },
            headers: { "x-coco-wait": "commit" },
          });
          out.push(res.status);
        }
        return out;
      }),
    );
    clearInterval(sampler);
    assert.deepEqual(statuses.flat(), new Array(writers * perWriter).fill(200));
    assert.ok(mostInFlight <= 2, `${mostInFlight} signatures in flight at once (at most 2)`);
    const burstSignatures = stats.signatures - before;
    assert.ok(
      burstSignatures < writers * perWriter,
      `${burstSignatures} signatures for ${writers * perWriter} writes`,
    );
    assert.equal(primary.node.state.txSinceSignature, 0, "every write is under a signature");

    // Quiet again: a lone write finds no signature in flight and is signed in its own batch.
    await cluster.until("the last signature is committed", () => {
      const { state } = primary.node;
      return state.commitSeqno === state.lastSignatureSeqno;
    });
    const started = performance.now();
    const lone = await cluster.call(primary, "PUT", "/app/log/private?id=1", {
      body: { msg: "lone" },
      headers: { "x-coco-wait": "commit" },
    });
    const tookMs = performance.now() - started;
    assert.equal(lone.status, 200, lone.text);
    // Generous for a loaded machine: the interval bound alone (maxIntervalMs, 20 ms) would sign
    // it long before, and a stuck pacing would leave it to the 10 s commit-wait timeout. The idle
    // bound stretches with the load, up to just under that timeout.
    const bound = Math.min(budget(5_000), 9_000);
    assert.ok(tookMs < bound, `a lone write took ${tookMs.toFixed(0)} ms to commit (bound ${bound} ms)`);
  } finally {
    await cluster.stop();
  }
});

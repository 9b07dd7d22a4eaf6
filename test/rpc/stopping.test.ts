/**
 * What clients see while a node stops (docs/api.md): a write waiting for its commit is answered
 * 503 CommitUnavailable naming its transaction, not a dropped connection.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { budget } from "../e2e/waits.ts";
import { freePort } from "../helpers/cli.ts";
import { Cluster } from "../helpers/cluster.ts";

test("a stopping node answers its commit waiters 503 CommitUnavailable", {
  timeout: budget(120_000),
}, async () => {
  const cluster = await Cluster.create();
  const timeouts = { commitWaitTimeoutMs: budget(30_000) };
  try {
    const n0 = await cluster.startService({ ...timeouts, openAtNodes: 2 });
    const n1 = await cluster.join("n1", n0, {
      ...timeouts,
      rpc: { address: `127.0.0.1:${await freePort()}` },
      nodeAddress: `127.0.0.1:${await freePort()}`,
    });
    await cluster.untilOpen();
    assert.ok(n0.node.isPrimary);
    // The connection the later request reuses is opened now, while the node serves.
    assert.equal((await cluster.call(n0, "GET", "/node/state")).status, 200);
    // Without its backup the primary cannot commit: the write waits.
    await n1.stop();
    const waiting = cluster.call(n0, "PUT", "/app/log/private?id=7", {
      body: { msg: "waits for a commit that will not come" },
      headers: { "x-coco-wait": "commit" },
    });
    await new Promise((r) => setTimeout(r, 300));
    const t0 = performance.now();
    const stopping = n0.stop();
    const answer = await waiting;
    assert.equal(answer.status, 503, answer.text);
    assert.equal(answer.json().error.code, "CommitUnavailable");
    assert.match(answer.json().error.message, /node stopped before the transaction committed/);
    assert.match(String(answer.headers["x-ms-ccf-transaction-id"]), /^\d+\.\d+$/);
    assert.ok(
      performance.now() - t0 < 10_000,
      "answered at the end of the stop's grace, not at the wait's timeout",
    );
    await stopping;
  } finally {
    await cluster.stop();
  }
});

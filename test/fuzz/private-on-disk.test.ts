import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { RunningNode } from "../../src/node/index.ts";
import { budget } from "../e2e/waits.ts";
import { Cluster } from "../helpers/cluster.ts";
import { filesContaining } from "../helpers/files.ts";

/**
 * "No private data in clear on disk", on a replicated service: the primary, its backups (which
 * apply write sets they never executed), every node's snapshots, and a node that joined from a
 * snapshot. Public data is in clear in every ledger, which shows the scan reads the right files.
 */
const SNAPSHOTS = { snapshots: { txInterval: 10 } };
const PRIVATE = "PRIVATE-MARKER-c41d9e";
const PUBLIC = "PUBLIC-MARKER-8be210";

test("private values never appear in clear on any node's disk, snapshots and a snapshot-joined node included", {
  timeout: budget(300_000),
}, async () => {
  const cluster = await Cluster.create();
  const commit = { "x-coco-wait": "commit" };
  try {
    const n0 = await cluster.startService({ openAtNodes: 1, ...SNAPSHOTS });
    await cluster.until(
      "open",
      async () => (await cluster.call(n0, "GET", "/node/ready/app")).status === 204,
    );
    // Joining and trusting together: if trusting fails, the join's failure is not left unheard.
    const joinTrusted = async (name: string, via: RunningNode) => {
      const [joined] = await Promise.all([
        cluster.join(name, via, SNAPSHOTS),
        cluster.pendingNode(via).then((id) => cluster.trustNode(id)),
      ]);
      return joined;
    };
    for (const name of ["n1", "n2"]) await joinTrusted(name, n0);
    const primary = () => cluster.primary() ?? n0;
    for (let i = 0; i < 40; i++) {
      const res = await cluster.call(primary(), "PUT", `/app/log/private?id=${i}`, {
        body: { msg: `${PRIVATE}-${i}` },
        headers: commit,
      });
      assert.equal(res.status, 200, res.text);
    }
    await cluster.call(primary(), "PUT", "/app/log/public?id=1", { body: { msg: PUBLIC }, headers: commit });
    await cluster.until(
      "the primary compacted its log",
      () => (primary().node.consensusStatus?.logStart ?? 0) > 0,
    );
    // A fourth node joins: consensus no longer holds the early entries, so it starts from a snapshot.
    const n3 = await joinTrusted("n3", primary());
    await cluster.until("n3 caught up", () => n3.node.state.commitSeqno >= primary().node.state.commitSeqno);
    assert.ok(n3.node.state.historyStart > 1, "n3 started from a snapshot");
    for (let i = 40; i < 45; i++) {
      await cluster.call(primary(), "PUT", `/app/log/private?id=${i}`, {
        body: { msg: `${PRIVATE}-${i}` },
        headers: commit,
      });
    }
    assert.deepEqual((await cluster.call(n3, "GET", "/app/log/private?id=44")).json(), {
      msg: `${PRIVATE}-44`,
    });
    for (const running of cluster.nodes) await running.node.flush();
    for (const name of ["n0", "n1", "n2"]) {
      assert.ok(
        readdirSync(join(cluster.dir, name, "snapshots")).some((f) => f.endsWith(".committed")),
        `${name} wrote a snapshot`,
      );
    }
    assert.deepEqual(filesContaining(cluster.dir, PRIVATE), []);
    for (const name of ["n0", "n1", "n2", "n3"]) {
      assert.ok(
        filesContaining(join(cluster.dir, name), PUBLIC).length > 0,
        `${name} holds the public value`,
      );
    }
  } finally {
    await cluster.stop();
  }
});

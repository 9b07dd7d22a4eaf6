import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { appendFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import type { RunningNode } from "../../src/node/index.ts";
import { budget } from "../e2e/waits.ts";
import { stopAndAuditLedgers } from "../helpers/audit.ts";
import { freePort } from "../helpers/cli.ts";
import { Cluster } from "../helpers/cluster.ts";

/**
 * A full disk on the primary: its next ledger write fails with ENOSPC, and the node must stop
 * (fail-stop) rather than serve on with a ledger it could not persist. The other two elect a new
 * primary and go on; the stopped node, restarted with space again, recovers, and every write
 * ever acknowledged is on every node. The disk is a real tmpfs filled to its last byte, so this
 * needs root (mount); elsewhere it is skipped with the reason.
 */
const canMount = process.getuid?.() === 0 && hasMount();

function hasMount(): boolean {
  try {
    execFileSync("mount", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Appends to a ballast file until the file system has not one byte left; returns its path. */
function fillDisk(dir: string): string {
  const ballast = join(dir, "ballast");
  writeFileSync(ballast, "");
  for (let size = 64 * 1024; size >= 1; size = Math.floor(size / 2)) {
    try {
      for (;;) appendFileSync(ballast, Buffer.alloc(size, 1));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
    }
  }
  return ballast;
}

function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", () => resolve(true));
  });
}

test("a primary whose disk fills fail-stops; the others go on; restarted with space it recovers every committed write", {
  timeout: budget(240_000),
  skip: canMount ? false : "needs root and mount(8) to put the node's directory on a small tmpfs",
}, async () => {
  const cluster = await Cluster.create();
  const n0Dir = join(cluster.dir, "n0");
  mkdirSync(n0Dir);
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", n0Dir]);
  const failures: Error[] = [];
  const n0Settings = {
    members: [{ cert: "member0_cert.pem" }],
    openAtNodes: 3,
    users: [{ cert: "user0_cert.pem" }],
    rpc: { address: `127.0.0.1:${await freePort()}` },
    nodeAddress: `127.0.0.1:${await freePort()}`,
  };
  const seams = { onFailStop: (e: Error) => failures.push(e) };
  let restarted: RunningNode | undefined;
  try {
    const n0 = await cluster.start("n0", n0Settings, seams);
    const n1 = await cluster.join("n1", n0);
    const n2 = await cluster.join("n2", n0);
    await cluster.untilOpen();
    const acked = new Map<number, string>();
    const write = async (via: RunningNode, id: number): Promise<number> => {
      const msg = `record ${id}`;
      try {
        const res = await cluster.call(via, "PUT", `/app/log/private?id=${id}`, {
          body: { msg },
          headers: { "x-coco-wait": "commit" },
        });
        if (res.status === 200) acked.set(id, msg);
        return res.status;
      } catch {
        return 0; // the node stopped under the request: no answer, nothing acknowledged
      }
    };
    for (let id = 0; id < 10; id++) assert.equal(await write(n0, id), 200);
    assert.equal(cluster.primary(), n0);

    const ballast = fillDisk(n0Dir);
    // Writes through the full primary: the first batch it cannot write stops it.
    let id = 10;
    await cluster.until(
      "n0 has fail-stopped",
      async () => {
        await write(n0, id++);
        return failures.length > 0;
      },
      60_000,
    );
    assert.equal(failures.length, 1, "fail-stop is reported once");
    assert.match(failures[0]!.message, /ENOSPC|no space/i);
    await cluster.until("n0 stopped serving", () => refusesConnections(n0.port), 20_000);
    assert.ok(n0.node.failure, "the node says why it stopped");

    // The other two carry on with a new primary, and everything they acknowledge stays.
    await cluster.until("n1 or n2 leads", () => n1.node.isPrimary || n2.node.isPrimary, 60_000);
    const via = n1.node.isPrimary ? n1 : n2;
    for (let k = 0; k < 10; k++) assert.equal(await write(via, id++), 200);

    // With space again, n0 starts from its directory, recovers and catches up.
    rmSync(ballast);
    restarted = await cluster.start("n0", n0Settings, seams);
    await cluster.until(
      "the restarted n0 catches up",
      () => restarted!.node.state.commitSeqno >= via.node.state.commitSeqno,
      90_000,
    );
    for (const node of [restarted, n1, n2]) {
      for (const [recordId, msg] of acked) {
        const res = await cluster.call(node, "GET", `/app/log/private?id=${recordId}`);
        assert.equal(
          res.status,
          200,
          `${node.node.nodeId} lost acknowledged record ${recordId}: ${res.text}`,
        );
        assert.deepEqual(res.json(), { msg });
      }
    }
    assert.ok(acked.size >= 20);
    assert.equal(failures.length, 1, "the restarted node writes again without failing");
    assert.equal(await stopAndAuditLedgers([restarted, n1, n2]), 3);
  } finally {
    for (const node of cluster.nodes) await node.stop().catch(() => undefined);
    execFileSync("umount", ["-l", n0Dir]);
    await cluster.stop();
  }
});

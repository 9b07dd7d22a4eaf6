import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { RunningNode } from "../../src/node/index.ts";
import { Cluster } from "../helpers/cluster.ts";

/** Writes sent to backups while the primary dies, and a retired node's answers. */

const FORWARD_TIMEOUT_MS = 10_000;

async function openCluster(nodes: number): Promise<Cluster> {
  const cluster = await Cluster.create();
  const n0 = await cluster.startService({ openAtNodes: nodes });
  const names = Array.from({ length: nodes - 1 }, (_, i) => `n${i + 1}`);
  // Joins wait for member0's votes, which take long on a loaded machine: the joiners' own
  // deadline is the cluster's, stretched by the load like its wait for them.
  try {
    await Promise.all(names.map((name) => cluster.join(name, n0)));
    await cluster.untilOpen();
  } catch (e) {
    // Nodes left running would keep the test process alive after the failure.
    await cluster.stop();
    throw e;
  }
  return cluster;
}

function backups(cluster: Cluster, except: RunningNode[] = []): RunningNode[] {
  return cluster.nodes.filter((n) => !n.node.isPrimary && !except.includes(n));
}

describe("a primary that dies with no call of a backup in flight", () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await openCluster(4);
  });
  after(async () => {
    await cluster?.stop();
  });

  test("a retired node answers client calls itself: 503 NodeRetired, naming nodes that serve", async () => {
    const retiring = backups(cluster)[0]!;
    assert.equal((await cluster.retireNode(retiring.node.nodeId)).proposalState, "Accepted");
    await cluster.until("the retired node knows it", () => retiring.node.consensusStatus?.role === "retired");
    const serving = cluster.nodes.filter((n) => n !== retiring).map((n) => `127.0.0.1:${n.port}`);
    for (const [method, path] of [
      ["PUT", "/app/log/private?id=1"],
      ["GET", "/app/log/private?id=1"],
    ] as const) {
      const res = await cluster.call(retiring, method, path, method === "PUT" ? { body: { msg: "x" } } : {});
      assert.equal(res.status, 503, res.text);
      const error = res.json().error;
      assert.equal(error.code, "NodeRetired");
      assert.match(error.message, /retired from the service/);
      for (const address of serving)
        assert.ok(error.message.includes(address), `${error.message} names ${address}`);
      assert.match(String(res.headers["x-ms-ccf-transaction-id"]), /^\d+\.\d+$/);
    }
  });

  test("a write queued for a dead primary goes to the new primary once it is elected", async () => {
    const primary = cluster.primary()!;
    const retired = cluster.nodes.find((n) => n.node.consensusStatus?.role === "retired");
    const backup = backups(cluster, retired ? [retired] : [])[0]!;
    const oldView = primary.node.state.view;
    // The session is forwarded once, so the path to the primary is warm.
    const first = await cluster.call(backup, "PUT", "/app/log/private?id=100", { body: { msg: "before" } });
    assert.equal(first.status, 200, first.text);

    const stopping = primary.stop();
    // The backup has lost its connection to the primary but does not yet know another primary:
    // the write it takes now is queued for a node that will never answer.
    await cluster.until(
      "the backup's connection to the primary is down",
      () => backup.node.peerLinks()[primary.node.nodeId]?.connected !== true,
    );
    const started = Date.now();
    const put = await cluster.call(backup, "PUT", "/app/log/private?id=101", {
      body: { msg: "during the election" },
      headers: { "x-coco-wait": "commit" },
    });
    const elapsed = Date.now() - started;
    await stopping;
    assert.equal(put.status, 200, put.text);
    assert.ok(elapsed < FORWARD_TIMEOUT_MS - 1000, `answered after ${elapsed} ms`);
    const [view] = String(put.headers["x-ms-ccf-transaction-id"]).split(".").map(Number);
    assert.ok(view! > oldView, `committed in view ${view}, after the dead primary's ${oldView}`);
    const next = cluster.nodes.find((n) => n !== primary && n.node.isPrimary)!;
    assert.deepEqual((await cluster.call(next, "GET", "/app/log/private?id=101")).json(), {
      msg: "during the election",
    });
    // Operators see the dead node from any live node.
    const seen = (await cluster.call(backup, "GET", "/node/network/nodes")).json().nodes as Array<{
      node_id: string;
      liveness: { state: string };
    }>;
    assert.equal(seen.find((n) => n.node_id === primary.node.nodeId)?.liveness.state, "unreachable");
  });
});

describe("a primary that dies with a backup's write in flight", () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await openCluster(3);
  });
  after(async () => {
    await cluster?.stop();
  });

  test("the write gets 503 ForwardedOutcomeUnknown at once; the next write succeeds", async () => {
    const primary = cluster.primary()!;
    const backup = backups(cluster)[0]!;
    // The primary receives forwarded calls and dies before answering any (as a kill -9 would).
    let received = 0;
    primary.node.onNodeRequest(() => {
      received++;
      return new Promise(() => {});
    });
    const started = Date.now();
    const inFlight = cluster.call(backup, "PUT", "/app/log/private?id=7", { body: { msg: "lost?" } });
    await cluster.until("the primary received the call", () => received === 1);
    await primary.stop();
    const res = await inFlight;
    const elapsed = Date.now() - started;
    assert.equal(res.status, 503, res.text);
    const error = res.json().error;
    assert.equal(error.code, "ForwardedOutcomeUnknown");
    assert.match(error.message, /may have run/);
    assert.match(error.message, /idempotent/);
    assert.ok(elapsed < FORWARD_TIMEOUT_MS - 3000, `answered after ${elapsed} ms`);

    const again = await cluster.call(backup, "PUT", "/app/log/private?id=8", { body: { msg: "after" } });
    assert.equal(again.status, 200, again.text);
  });
});

describe("a first node that dies before its service opened itself (openAtNodes)", () => {
  let cluster: Cluster | undefined;
  after(async () => {
    await cluster?.stop();
  });

  test("the joiner elected primary opens the service once enough nodes are trusted", async () => {
    cluster = await Cluster.create();
    const c = cluster;
    const n0 = await c.startService({ openAtNodes: 4 });
    await Promise.all(["n1", "n2"].map((name) => c.join(name, n0)));
    // Three of the four trusted nodes: still Opening. The first node, the only one configured
    // with openAtNodes, dies (as it may lose an election on a loaded machine).
    assert.equal(n0.node.serviceInfo().status, "Opening");
    // Both joiners hold everything n0 committed (the configuration with all three included), so
    // the two of them make a majority once it is gone: a joiner that had not caught up yet could
    // neither vote nor be elected.
    const committed = n0.node.consensusStatus?.commitSeqno ?? 0;
    await c.until("both joiners hold what the first node committed", () =>
      c.nodes.every((n) => (n.node.consensusStatus?.commitSeqno ?? 0) >= committed),
    );
    await n0.stop();
    c.nodes.splice(c.nodes.indexOf(n0), 1);
    let primary: RunningNode | undefined;
    await c.until("a joiner is elected primary", () => {
      primary = c.nodes.find((n) => n.node.isPrimary);
      return primary !== undefined;
    });
    await c.join("n3", primary!);
    // Four trusted nodes (the dead one is still recorded Trusted): the new primary, whose own
    // config has no openAtNodes, opens the service with the threshold genesis recorded.
    await c.untilOpen();
    const put = await c.call(primary!, "PUT", "/app/log/private?id=1", { body: { msg: "open" } });
    assert.equal(put.status, 200, put.text);
  });
});

import assert from "node:assert/strict";
import { test } from "node:test";
import { checkLedgers, checkRecords, converge } from "./checks.ts";
import { budget, type NetNode, type Network, waitUntil, withNetwork } from "./harness.ts";
import { Workload } from "./workload.ts";

/** Writes `id` on `node`, answered at once (not waiting for commit); returns its transaction id. */
async function writeNoWait(net: Network, node: NetNode, id: number, msg: string): Promise<string> {
  const reply = await net.call(node, "PUT", `/app/log/private?id=${id}`, { body: { msg } });
  assert.equal(reply.status, 200, reply.text);
  return String(reply.headers["x-ms-ccf-transaction-id"]);
}

async function txStatus(net: Network, node: NetNode, txid: string): Promise<string> {
  return (await net.call(node, "GET", `/app/tx?transaction_id=${txid}`)).json<{ status: string }>().status;
}

test("kill -9 every node, restart two of three: they elect a primary and hold every committed write", {
  timeout: budget(120_000),
}, async () => {
  await withNetwork(3, async (net) => {
    const load = new Workload(net, { clients: 3, readShare: 0, maxOpsPerClient: 20_000, maxMs: 60_000 });
    load.start();
    try {
      await load.moreAcks(40, 20_000);
    } finally {
      await load.stop();
    }
    for (const node of net.nodes) await net.kill(node);
    // The genesis node stays down; the other two are a majority.
    const back = net.nodes.slice(1);
    for (const node of back) await net.restart(node);
    const primary = await net.primary(25_000, back);
    const reply = await net.call(primary, "PUT", "/app/log/private?id=1", {
      body: { msg: "after the outage" },
      headers: { "x-coco-wait": "commit" },
    });
    assert.equal(reply.status, 200, reply.text);
    load.attempted.set(1, "after the outage");
    load.acked.set(1, "after the outage");
    await converge(net, back);
    await checkRecords(net, back, load);
  });
});

test("a node restarted alone does not report transactions only it holds as Committed, and rejoins after they are rolled back", {
  timeout: budget(120_000),
}, async () => {
  await withNetwork(3, async (net) => {
    const old = await net.primary();
    const others = net.nodes.filter((n) => n !== old);
    const first = await net.call(old, "PUT", "/app/log/private?id=1", {
      body: { msg: "committed" },
      headers: { "x-coco-wait": "commit" },
    });
    assert.equal(first.status, 200, first.text);
    // Alone, the primary still appends and signs, but cannot commit anything. Waits for the
    // signature after the lonely write (its last seqno passes it), not a fixed time: a loaded
    // machine may take longer than any sleep to sign.
    for (const node of others) await net.kill(node);
    const lonely = await writeNoWait(net, old, 2, "never committed");
    const lonelySeqno = Number(lonely.split(".")[1]);
    await waitUntil(`${old.name} to sign after ${lonely}`, 5_000, async () => {
      return (await net.consensus(old)).lastSeqno > lonelySeqno;
    });
    await net.kill(old);

    await net.restart(old);
    assert.notEqual(await txStatus(net, old, lonely), "Committed", `${lonely} is on one node of three`);

    // The other two elect a primary without it and commit over the lonely transaction's seqno.
    net.pause(old);
    for (const node of others) await net.restart(node);
    const primary = await net.primary(25_000, others);
    const next = await net.call(primary, "PUT", "/app/log/private?id=3", {
      body: { msg: "new view" },
      headers: { "x-coco-wait": "commit" },
    });
    assert.equal(next.status, 200, next.text);
    assert.equal(await txStatus(net, primary, lonely), "Invalid");

    net.resume(old);
    await waitUntil(`${old.name} to follow ${primary.name}`, 15_000, async () => {
      const s = await net.consensus(old);
      return s.role === "backup" && s.leader === primary.id;
    });
    const commit = await converge(net, net.nodes);
    assert.equal(await txStatus(net, old, lonely), "Invalid");
    assert.equal((await net.call(old, "GET", "/app/log/private?id=2")).status, 404);
    assert.equal((await net.call(old, "GET", "/app/log/private?id=3")).status, 200);
    await net.stopNodes();
    await checkLedgers(net.nodes, commit);
  });
});

import { test } from "node:test";
import { converge } from "./checks.ts";
import { budget, type NetNode, type Network, waitUntil, withNetwork } from "./harness.ts";
import { faultsUnderLoad } from "./under-load.ts";

async function catchUp(net: Network, node: NetNode, primary: NetNode, timeoutMs: number): Promise<void> {
  const target = await net.commitSeqno(primary);
  await waitUntil(`${node.name} to catch up to ${target}`, timeoutMs, async () => {
    return (await net.commitSeqno(node)) >= target;
  });
}

test("kill -9 a backup, write on, restart it from its config: it catches up under load and converges", {
  timeout: budget(120_000),
}, async (t) => {
  const options = { clients: 3, readShare: 0.2, maxOpsPerClient: 20_000, maxMs: 80_000 };
  await faultsUnderLoad(t, options, async (net, load) => {
    await load.moreAcks(20, 20_000);
    const primary = await net.primary();
    const backup = net.nodes.find((n) => n !== primary)!;
    // Killed while the network is quiet; the test below kills one mid-load.
    await load.pause();
    const before = await converge(net, net.nodes);
    await net.kill(backup);
    load.resume();
    // Two of three nodes are a majority: writes keep committing without it.
    await load.moreAcks(50, 20_000);
    const missed = (await net.commitSeqno(primary)) - before;

    await net.restart(backup);
    await catchUp(net, backup, primary, 25_000);
    t.diagnostic(`${backup.name} restarted and caught up ${missed}+ transactions`);
    await load.moreAcks(20, 20_000);
  });
});

test("kill -9 a backup while writes stream in, restart it: it catches up", {
  timeout: budget(60_000),
}, async () => {
  await withNetwork(3, async (net) => {
    const primary = await net.primary();
    const backup = net.nodes.find((n) => n !== primary)!;
    // Writes answered without waiting for commit: signatures come every few milliseconds, so
    // a backup nearly always holds entries after its last signature when it is killed.
    let streaming = true;
    let acked = 0;
    const writers = [0, 1, 2, 3].map(async (c) => {
      for (let i = 0; streaming && i < 100_000; i++) {
        const body = { msg: `w${c}-${i}` };
        const reply = await net
          .call(primary, "PUT", `/app/log/private?id=${c * 1_000_000 + i}`, { body })
          .catch(() => {});
        if (reply?.status === 200) acked++;
      }
    });
    // Waits on progress, not on the clock: however slow the machine, the backup is killed with
    // writes streaming, and restarted only once the others have moved on without it.
    const moreWrites = (n: number) => {
      const target = acked + n;
      return waitUntil(`${n} more acknowledged writes`, 20_000, () => acked >= target, 20);
    };
    try {
      await moreWrites(50);
      await net.kill(backup);
      await moreWrites(50);
      await net.restart(backup);
      await catchUp(net, backup, primary, 10_000);
    } finally {
      streaming = false;
      await Promise.all(writers);
    }
    await converge(net, net.nodes);
  });
});

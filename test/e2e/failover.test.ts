import assert from "node:assert/strict";
import { test } from "node:test";
import { checkAfterLoad } from "./checks.ts";
import { waitUntil, withNetwork } from "./harness.ts";
import { Workload } from "./workload.ts";

test("kill -9 the primary twice under load: a new primary each time, no committed write lost, ledgers agree, history linearizable", {
  timeout: 120_000,
}, async (t) => {
  await withNetwork(3, async (net) => {
    const load = new Workload(net, { clients: 4, readShare: 0.2, maxOpsPerClient: 20_000, maxMs: 80_000 });
    load.start();
    try {
      await load.moreAcks(40, 20_000);

      const first = await net.primary();
      const firstView = (await net.consensus(first)).view;
      await net.kill(first);
      const second = await net.primary(
        25_000,
        net.nodes.filter((n) => n !== first),
      );
      const secondView = (await net.consensus(second)).view;
      assert.ok(secondView > firstView, `new primary in view ${secondView} after ${firstView}`);
      await load.moreAcks(40, 20_000);
      t.diagnostic(
        `first failover: ${first.name} -> ${second.name} (view ${secondView}), acked ${load.acked.size}`,
      );

      // The first victim restarts from its ledger and catches up while writes go on.
      await net.restart(first);
      const caughtUpTo = await net.commitSeqno(second);
      await waitUntil(`${first.name} to catch up to ${caughtUpTo}`, 25_000, async () => {
        return (await net.commitSeqno(first)) >= caughtUpTo;
      });
      await load.moreAcks(20, 20_000);

      await net.kill(second);
      const third = await net.primary(
        25_000,
        net.nodes.filter((n) => n !== second),
      );
      const thirdView = (await net.consensus(third)).view;
      assert.ok(thirdView > secondView, `new primary in view ${thirdView} after ${secondView}`);
      await load.moreAcks(40, 20_000);
      t.diagnostic(
        `second failover: ${second.name} -> ${third.name} (view ${thirdView}), acked ${load.acked.size}`,
      );
    } finally {
      await load.stop();
    }
    // The first victim comes back, so the checks cover all three nodes.
    await net.restart(net.nodes.find((n) => !net.isRunning(n))!);
    await checkAfterLoad(net, load, (m) => t.diagnostic(m));
  });
});

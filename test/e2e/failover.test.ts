import { test } from "node:test";
import { newPrimaryWithout } from "./checks.ts";
import { budget, waitUntil } from "./harness.ts";
import { faultsUnderLoad } from "./under-load.ts";

test("kill -9 the primary twice under load: a new primary each time, no committed write lost, ledgers agree, history linearizable", {
  timeout: budget(120_000),
}, async (t) => {
  const options = { clients: 4, readShare: 0.2, maxOpsPerClient: 20_000, maxMs: 80_000 };
  await faultsUnderLoad(
    t,
    options,
    async (net, load) => {
      await load.moreAcks(40, 20_000);

      const first = await net.primary();
      const firstView = (await net.consensus(first)).view;
      await net.kill(first);
      const { primary: second, view: secondView } = await newPrimaryWithout(net, first, firstView);
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
      const { primary: third, view: thirdView } = await newPrimaryWithout(net, second, secondView);
      await load.moreAcks(40, 20_000);
      t.diagnostic(
        `second failover: ${second.name} -> ${third.name} (view ${thirdView}), acked ${load.acked.size}`,
      );
    },
    // The second victim comes back, so the checks cover all three nodes.
    (net) => net.restart(net.nodes.find((n) => !net.isRunning(n))!),
  );
});

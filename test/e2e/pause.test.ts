import assert from "node:assert/strict";
import { test } from "node:test";
import { checkAfterLoad } from "./checks.ts";
import { waitUntil, withNetwork } from "./harness.ts";
import { Workload } from "./workload.ts";

test("SIGSTOP the primary past an election timeout: a new primary commits writes; on SIGCONT the old one follows it and all converge", {
  timeout: 120_000,
}, async (t) => {
  await withNetwork(3, async (net) => {
    // Linearizable reads too: once resumed, the old primary must not answer them from its stale
    // state before it learns of the new view.
    const load = new Workload(net, { clients: 4, readShare: 0.2, maxOpsPerClient: 20_000, maxMs: 80_000 });
    load.start();
    try {
      await load.moreAcks(30, 20_000);
      const paused = await net.primary();
      const pausedView = (await net.consensus(paused)).view;
      const started = Date.now();
      net.pause(paused);
      const next = await net.primary(
        25_000,
        net.nodes.filter((n) => n !== paused),
      );
      const nextView = (await net.consensus(next)).view;
      assert.ok(nextView > pausedView, `new primary in view ${nextView} after ${pausedView}`);
      t.diagnostic(
        `${paused.name} paused; ${next.name} primary in view ${nextView} after ${Date.now() - started} ms`,
      );
      await load.moreAcks(30, 20_000);

      net.resume(paused);
      await waitUntil(`${paused.name} to follow ${next.name}`, 15_000, async () => {
        const s = await net.consensus(paused);
        return s.role === "backup" && s.leader === next.id && s.view === nextView;
      });
      await load.moreAcks(20, 20_000);
    } finally {
      await load.stop();
    }
    await checkAfterLoad(net, load, (m) => t.diagnostic(m));
  });
});

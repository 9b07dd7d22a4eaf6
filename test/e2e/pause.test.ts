import { test } from "node:test";
import { newPrimaryWithout } from "./checks.ts";
import { budget, waitUntil } from "./harness.ts";
import { faultsUnderLoad } from "./under-load.ts";

test("SIGSTOP the primary past an election timeout: a new primary commits writes; on SIGCONT the old one follows it and all converge", {
  timeout: budget(120_000),
}, async (t) => {
  // Linearizable reads too: once resumed, the old primary must not answer them from its stale
  // state before it learns of the new view.
  const options = { clients: 4, readShare: 0.2, maxOpsPerClient: 20_000, maxMs: 80_000 };
  await faultsUnderLoad(t, options, async (net, load) => {
    await load.moreAcks(30, 20_000);
    const paused = await net.primary();
    const pausedView = (await net.consensus(paused)).view;
    const started = Date.now();
    net.pause(paused);
    const { primary: next, view: nextView } = await newPrimaryWithout(net, paused, pausedView);
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
  });
});

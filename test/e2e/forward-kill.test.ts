/**
 * Forwarded writes across a kill -9 of the primary, with real node processes: clients keep
 * writing through one backup while the primary is killed. Each write must end in one of the
 * answers docs/operations.md ("Failover of forwarded writes") lists, within the documented bound
 * (`rpc.forwardTimeoutMs`), and what it says must be true of the state the new primary serves;
 * writes through the same node succeed once a new primary is elected. (The in-process version of
 * these cases is test/rpc/failover.test.ts.)
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { newPrimaryWithout } from "./checks.ts";
import { budget, type NetNode, Network, waitUntil } from "./harness.ts";

/** `rpc.forwardTimeoutMs`'s default: no forwarded write waits longer for its answer. */
const FORWARD_TIMEOUT_MS = 10_000;
/**
 * Added to the bound for the machine (scheduling, TLS, the commit wait after the answer): an idle
 * machine's figure, stretched by the load when the bound is checked (`budget`), as these are
 * measured by the test's client; the product's own term, FORWARD_TIMEOUT_MS, is not stretched.
 */
const SLACK_MS = 5_000;
/** A write with no answer by then hung: the test fails (rather than waiting with it; stretched by `send`). */
const CLIENT_TIMEOUT_MS = FORWARD_TIMEOUT_MS + 2 * SLACK_MS;
const WRITERS = 4;

/** What each documented error means for the write's effect. */
const CLEAR_ERRORS: Record<string, "not run" | "may have run"> = {
  ForwardedOutcomeUnknown: "may have run",
  ForwardingFailed: "not run",
  CommitUnavailable: "may have run",
};

interface Outcome {
  id: number;
  msg: string;
  startedAt: number;
  endedAt: number;
  status: number | "no answer";
  code: string | undefined;
}

/** Writers that PUT new private records through `via` (with respond-on-commit) until stopped. */
function writeThrough(net: Network, via: NetNode) {
  const outcomes: Outcome[] = [];
  let nextId = 1;
  let stopped = false;
  const run = async () => {
    while (!stopped) {
      const id = nextId++;
      const msg = `forwarded-${id}`;
      const startedAt = Date.now();
      let status: Outcome["status"];
      let code: string | undefined;
      try {
        const reply = await net.call(via, "PUT", `/app/log/private?id=${id}`, {
          body: { msg },
          headers: { "x-coco-wait": "commit" },
          timeoutMs: CLIENT_TIMEOUT_MS,
        });
        status = reply.status;
        code = reply.errorCode;
      } catch (e) {
        status = "no answer";
        code = (e as Error).name;
      }
      outcomes.push({ id, msg, startedAt, endedAt: Date.now(), status, code });
    }
  };
  const running = Promise.all(Array.from({ length: WRITERS }, run));
  return {
    outcomes,
    succeededSince: (t: number) => outcomes.filter((o) => o.startedAt >= t && o.status === 200).length,
    stop: async () => {
      stopped = true;
      await running;
    },
  };
}

test("kill -9 the primary while writes go through a backup: each answered within the bound, as documented, and the backup serves writes again", {
  timeout: budget(180_000),
}, async (t) => {
  const net = await Network.start(3);
  try {
    const primary = await net.primary();
    const view = (await net.consensus(primary)).view;
    const backup = net.nodes.find((n) => n !== primary)!;
    const writers = writeThrough(net, backup);
    let killedAt = 0;
    try {
      await waitUntil(
        "writes through the backup before the kill",
        30_000,
        () => writers.succeededSince(0) >= 20,
      );
      killedAt = Date.now();
      await net.kill(primary);
      const { primary: next, view: nextView } = await newPrimaryWithout(net, primary, view);
      const electedAt = Date.now();
      t.diagnostic(
        `${primary.name} killed; ${next.name} primary in view ${nextView} after ${electedAt - killedAt} ms; writes went through ${backup.name}${next === backup ? " (itself elected)" : ""}`,
      );
      // Writes through the same node succeed after the election.
      await waitUntil("writes through the backup after the election", 30_000, () => {
        return writers.succeededSince(electedAt) >= 10;
      });
    } finally {
      await writers.stop();
    }
    const { outcomes } = writers;
    const failed = outcomes.filter((o) => o.status !== 200);
    const acrossKill = outcomes.filter((o) => o.startedAt <= killedAt && o.endedAt >= killedAt);
    t.diagnostic(
      `${outcomes.length} writes, ${acrossKill.length} in flight at the kill: ${outcomes.length - failed.length} ok, ` +
        `errors ${JSON.stringify(Object.fromEntries(countBy(failed.map((o) => `${o.status} ${o.code}`))))}`,
    );
    assert.ok(acrossKill.length > 0, "some writes were in flight when the primary was killed");

    // No write hung: each was answered within the documented bound.
    const bound = FORWARD_TIMEOUT_MS + budget(SLACK_MS);
    const slowest = outcomes.reduce((a, o) => Math.max(a, o.endedAt - o.startedAt), 0);
    const hung = outcomes.filter((o) => o.status === "no answer" || o.endedAt - o.startedAt > bound);
    assert.deepEqual(hung, [], `writes past the bound of ${bound} ms (slowest ${slowest} ms)`);

    // Each answer is a success or one of the documented errors.
    const unclear = outcomes.filter(
      (o) => o.status !== 200 && !(o.code !== undefined && o.code in CLEAR_ERRORS),
    );
    assert.deepEqual(unclear, [], "answers other than success or a documented failover error");

    // The new primary's state agrees with every answer: successes are there, "not run" is not.
    const records = await net.records(await net.primary());
    for (const o of outcomes) {
      if (o.status === 200) assert.equal(records.get(o.id), o.msg, `write ${o.id} succeeded but is missing`);
      else if (CLEAR_ERRORS[o.code!] === "not run") {
        assert.equal(records.has(o.id), false, `write ${o.id} answered ${o.code} but was run`);
      }
    }
  } catch (e) {
    t.diagnostic(net.diagnostics());
    throw e;
  } finally {
    await net.cleanup();
  }
});

function countBy(keys: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const k of keys) counts.set(k, (counts.get(k) ?? 0) + 1);
  return counts;
}

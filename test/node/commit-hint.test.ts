import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { pino } from "pino";
import { COMMIT_HINT_INTERVAL_MS, StateFiles } from "../../src/node/state-files.ts";
import { startTestNetwork } from "../helpers/network.ts";

const TICK_MS = 100;
const log = pino({ level: "silent" });

/** What a node restarted now would read: a fresh StateFiles on the same directory. */
function hintAfterCrash(dir: string): number {
  return new StateFiles(dir, log).readCommitHint();
}

test("the commit hint is at most an interval behind, written at most once per interval, and at once when a configuration change settles", async () => {
  const dir = mkdtempSync(join(tmpdir(), "coco-hint-"));
  try {
    let now = 0;
    const files = new StateFiles(dir, log, { now: () => now });
    const noted: Array<{ at: number; seqno: number }> = [];
    let writes = 0;
    let last = 0;
    const ticks = (5 * COMMIT_HINT_INTERVAL_MS) / TICK_MS;
    for (let tick = 1; tick <= ticks; tick++) {
      now = tick * TICK_MS;
      const seqno = tick * 10;
      // Tick 23 commits a configuration change: the hint must hold it after that very tick.
      files.noteCommit(seqno, tick === 23);
      noted.push({ at: now, seqno });
      files.saveCommitHint();
      await files.commitHintSettled();
      const hint = hintAfterCrash(dir);
      if (hint !== last) writes++;
      last = hint;
      // Only real commit points: never past what was noted.
      assert.ok(hint <= seqno, `tick ${tick}: hint ${hint} is past the commit point ${seqno}`);
      // Never more than an interval behind (plus the tick that writes it).
      const due = noted.filter((n) => n.at <= now - COMMIT_HINT_INTERVAL_MS).at(-1)?.seqno ?? 0;
      assert.ok(hint >= due, `tick ${tick}: hint ${hint} is older than ${due}, noted an interval ago`);
      if (tick === 23) assert.equal(hint, seqno, "a settled configuration change is written at once");
    }
    // Once an interval (the first at once), plus the configuration change: not once a tick.
    const most = (ticks * TICK_MS) / COMMIT_HINT_INTERVAL_MS + 2;
    assert.ok(writes <= most, `${writes} writes in ${ticks} ticks (at most ${most})`);
    assert.ok(COMMIT_HINT_INTERVAL_MS <= 1_000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a clean stop writes the latest commit point whatever the interval; a missing hint reads as 0", async () => {
  const dir = mkdtempSync(join(tmpdir(), "coco-hint-"));
  try {
    const now = 0;
    const files = new StateFiles(dir, log, { now: () => now });
    files.noteCommit(7);
    files.saveCommitHint();
    await files.commitHintSettled();
    assert.equal(hintAfterCrash(dir), 7);
    files.noteCommit(9);
    files.saveCommitHint();
    await files.commitHintSettled();
    assert.equal(hintAfterCrash(dir), 7, "not written again within the interval");
    await files.flushCommitHint();
    assert.equal(hintAfterCrash(dir), 9);
    // An unreadable or missing hint reads as 0: the most cautious value.
    rmSync(join(dir, "commit.json"));
    assert.equal(hintAfterCrash(dir), 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a running node keeps its commit hint within about a second of its commit point", async () => {
  const net = await startTestNetwork();
  try {
    const path = join(net.nodeDir, "commit.json");
    const read = () =>
      existsSync(path)
        ? (JSON.parse(readFileSync(path, "utf8")) as { commit_seqno: number }).commit_seqno
        : 0;
    for (let round = 0; round < 3; round++) {
      let seqno = 0;
      for (let i = 0; i < 5; i++) {
        const res = await net.call("PUT", `/app/log/public?id=${round * 10 + i}`, {
          body: { msg: "m" },
          headers: { "x-coco-wait": "commit" },
        });
        assert.equal(res.status, 200);
        seqno = Number(res.txid!.split(".")[1]);
      }
      // The file a crash would leave: written while the node runs, not only when it stops. The
      // bound is an interval and a tick; the rest is slack for a loaded machine.
      const started = Date.now();
      while (read() < seqno && Date.now() - started < COMMIT_HINT_INTERVAL_MS + 10_000) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(read() >= seqno, `round ${round}: hint ${read()} never reached committed ${seqno}`);
      assert.ok(read() <= net.running.node.state.commitSeqno, "the hint is a commit point the node saw");
    }
  } finally {
    await net.cleanup();
  }
});

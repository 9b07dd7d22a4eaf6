import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Entry } from "../../src/consensus/index.ts";
import { SimDisk } from "./disk.ts";
import { Prng } from "./prng.ts";

function entries(from: number, to: number, view = 1): Entry[] {
  const out: Entry[] = [];
  for (let s = from; s <= to; s++)
    out.push({ seqno: s, view, isSignature: false, data: new Uint8Array([s]) });
  return out;
}

const base = { seqno: 0, view: 0, config: ["a"] };

describe("simulated disk", () => {
  it("keeps synced writes through a crash and applies truncations in order", () => {
    const disk = new SimDisk(base);
    disk.append(entries(1, 5));
    disk.truncate(3);
    disk.append(entries(4, 6, 2));
    disk.recordCommit(3);
    disk.sync();
    disk.crash(new Prng(1));
    const { log, commitSeqno } = disk.recover();
    assert.deepEqual(
      log.entries.map((e) => `${e.view}.${e.seqno}`),
      ["1.1", "1.2", "1.3", "2.4", "2.5", "2.6"],
    );
    assert.equal(commitSeqno, 3);
  });

  it("a crash keeps only a prefix of the unsynced writes, and cuts off a torn one", () => {
    let sawLoss = false;
    let sawTorn = false;
    for (let seed = 0; seed < 200; seed++) {
      const disk = new SimDisk(base);
      disk.append(entries(1, 2));
      disk.sync();
      disk.append(entries(3, 6));
      disk.append(entries(7, 9));
      disk.crash(new Prng(seed));
      const seqnos = disk.recover().log.entries.map((e) => e.seqno);
      // Always a contiguous prefix that includes everything synced.
      assert.deepEqual(
        seqnos,
        Array.from({ length: seqnos.length }, (_, i) => i + 1),
      );
      assert.ok(seqnos.length >= 2);
      if (seqnos.length < 9) sawLoss = true;
      if (disk.stats.tornWrites > 0) sawTorn = true;
      // After recovery the torn tail is gone for good: new writes follow the kept prefix.
      disk.append(entries(seqnos.length + 1, seqnos.length + 1, 3));
      disk.sync();
      assert.equal(disk.recover().log.entries.length, seqnos.length + 1);
    }
    assert.ok(sawLoss && sawTorn);
  });

  it("starts the log after a snapshot, and drops it all when told to", () => {
    const disk = new SimDisk(base);
    disk.append(entries(1, 8));
    disk.sync();
    disk.writeSnapshot({ point: { seqno: 5, view: 1, config: ["a"] }, state: new Map([["k", "v"]]) }, false);
    let recovered = disk.recover();
    assert.equal(recovered.log.start.seqno, 5);
    assert.deepEqual(
      recovered.log.entries.map((e) => e.seqno),
      [6, 7, 8],
    );
    assert.equal(recovered.snapshot?.state.get("k"), "v");
    disk.writeSnapshot({ point: { seqno: 12, view: 2, config: ["a"] }, state: new Map() }, true);
    recovered = disk.recover();
    assert.equal(recovered.log.start.seqno, 12);
    assert.deepEqual(recovered.log.entries, []);
  });
});

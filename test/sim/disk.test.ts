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

describe("simulated disk", () => {
  it("keeps synced writes through a crash and applies truncations in order", () => {
    const disk = new SimDisk();
    disk.append(entries(1, 5));
    disk.truncate(3);
    disk.append(entries(4, 6, 2));
    disk.recordCommit(3);
    disk.sync();
    disk.crash(new Prng(1));
    const { entries: log, commitSeqno } = disk.recover();
    assert.deepEqual(
      log.map((e) => `${e.view}.${e.seqno}`),
      ["1.1", "1.2", "1.3", "2.4", "2.5", "2.6"],
    );
    assert.equal(commitSeqno, 3);
  });

  it("a crash keeps only a prefix of the unsynced writes, and cuts off a torn one", () => {
    let sawLoss = false;
    let sawTorn = false;
    for (let seed = 0; seed < 200; seed++) {
      const disk = new SimDisk();
      disk.append(entries(1, 2));
      disk.sync();
      disk.append(entries(3, 6));
      disk.append(entries(7, 9));
      disk.crash(new Prng(seed));
      const seqnos = disk.recover().entries.map((e) => e.seqno);
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
      assert.equal(disk.recover().entries.length, seqnos.length + 1);
    }
    assert.ok(sawLoss && sawTorn);
  });

  it("keeps the whole ledger under a snapshot, and restarts it after one that replaces it", () => {
    const disk = new SimDisk();
    disk.append(entries(1, 8));
    disk.sync();
    const bytes = Uint8Array.of(1, 2, 3);
    disk.writeSnapshot({ point: { seqno: 5, view: 1, config: ["a"] }, bytes }, false);
    let recovered = disk.recover();
    assert.equal(recovered.ledgerStart, 1);
    assert.equal(recovered.entries.length, 8);
    assert.equal(recovered.snapshot?.point.seqno, 5);
    assert.deepEqual(recovered.snapshot?.bytes, bytes);
    disk.writeSnapshot({ point: { seqno: 12, view: 2, config: ["a"] }, bytes }, true);
    recovered = disk.recover();
    assert.equal(recovered.ledgerStart, 13);
    assert.deepEqual(recovered.entries, []);
    // The ledger goes on after the snapshot; anything else is corruption.
    disk.append(entries(13, 14, 2));
    assert.deepEqual(
      disk.written().entries.map((e) => e.seqno),
      [13, 14],
    );
    disk.append(entries(16, 16, 2));
    disk.sync();
    assert.throws(() => disk.recover(), /seqno 16 where 15 was next/);
  });

  it("reads the ledger as written without losing unsynced writes", () => {
    const disk = new SimDisk();
    disk.append(entries(1, 3));
    disk.sync();
    disk.append(entries(4, 5));
    disk.truncate(4);
    assert.deepEqual(
      disk.written().entries.map((e) => e.seqno),
      [1, 2, 3, 4],
    );
    assert.equal(disk.recover().entries.length, 3);
  });
});

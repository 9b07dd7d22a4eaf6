import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { test } from "node:test";
import { type Logger, pino } from "pino";
import { toHex } from "../../src/crypto/index.ts";
import {
  type DecodedEntry,
  decodeSnapshot,
  parseJsonBytes,
  SINGLETON_KEY,
  snapshotDigest,
  Tables,
} from "../../src/ledger/index.ts";
import { SNAPSHOT_TX_PER_KEY, Snapshots } from "../../src/node/snapshots.ts";
import { budget } from "../e2e/waits.ts";
import { type Pair, snapshotPair } from "./snapshot-pair.ts";

function memoryLog(): { log: Logger; lines: Array<{ level: number; msg: string }> } {
  const lines: Array<{ level: number; msg: string }> = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { log: pino({ level: "info" }, sink), lines };
}

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "coco-snap-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The evidence table's writes in `entries`: announcements and digests. */
function evidenceWrites(entries: DecodedEntry[]): Array<{ seqno: number; key: string; value: unknown }> {
  const out: Array<{ seqno: number; key: string; value: unknown }> = [];
  for (const entry of entries) {
    const map = entry.publicWriteSet.find((m) => m.name === Tables.snapshotEvidence);
    for (const u of map?.updates ?? []) {
      const key = Buffer.from(u.key).equals(Buffer.from(SINGLETON_KEY)) ? "evidence" : "begun";
      out.push({ seqno: entry.seqno, key, value: parseJsonBytes(u.value!) });
    }
  }
  return out;
}

/** Runs the event loop until `done` holds (slices run on setImmediate), or fails after 10 s stretched by the load. */
async function until(done: () => boolean): Promise<void> {
  const deadline = Date.now() + budget(10_000);
  while (!done()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setImmediate(r));
  }
}

/** Signs on the primary, replicates, and tells both nodes' snapshots, as the node does. */
function signAndReplicate(
  pair: Pair,
  primarySnaps: Snapshots,
  backupSnaps: Snapshots | undefined,
): { sig: number; entries: DecodedEntry[] } {
  const sig = pair.primary.emitSignature();
  primarySnaps.afterSignature(sig);
  const entries = pair.replicate();
  for (const entry of entries) backupSnaps?.afterReplicated(entry);
  return { sig, entries };
}

test("a snapshot is due after max(txInterval, k x keys at the last one) transactions; trigger_snapshot forces one", async (t) => {
  const pair = await snapshotPair();
  const snaps = new Snapshots(tempDir(t), pair.primary, 10, memoryLog().log, 0);
  const begun: number[] = [];
  const sign = () => {
    const { sig, entries } = signAndReplicate(pair, snaps, undefined);
    for (const w of evidenceWrites(entries)) if (w.key === "begun") begun.push(sig);
    return sig;
  };
  const job = () => (snaps as unknown as { job?: { active: boolean } }).job;
  /** Lets the snapshot begun last finish and its evidence commit. */
  const settle = async () => {
    await until(() => !job()?.active);
    const sig = sign();
    pair.primary.markCommitted(sig);
    await snaps.committed(sig);
  };
  // No snapshot yet: the interval's 10 transactions rule.
  for (let i = 0; i < 7; i++) pair.write("records", `k${i % 3}`, "v");
  assert.equal(sign(), 9);
  assert.deepEqual(begun, [], "9 transactions since the start: not due");
  pair.write("records", "k0", "v");
  sign();
  assert.deepEqual(begun, [11], "due at the first signature 10 transactions in");
  await settle();

  // A few keys at that snapshot: the interval still rules; 500 new keys go into the next one.
  for (let i = 0; i < 500; i++) pair.write("records", `unique${i}`, "v");
  const second = sign();
  assert.deepEqual(begun, [11, second]);
  const keysThere = pair.primary.store.versionAt(second).keyCount;
  assert.ok(keysThere > 500);
  await settle();

  // Now the next is due only after as many transactions as that snapshot held keys.
  let previous = second;
  for (;;) {
    for (let i = 0; i < 20; i++) pair.write("records", `more${pair.primary.lastSeqno}`, "v");
    const at = sign();
    if (begun.length > 2) {
      assert.equal(begun[2], at);
      assert.ok(at - second >= SNAPSHOT_TX_PER_KEY * keysThere, `${at - second} transactions since`);
      assert.ok(previous - second < SNAPSHOT_TX_PER_KEY * keysThere, "not due at the signature before");
      break;
    }
    previous = at;
  }
  await settle();

  // Members ask: the very next signature takes one, whatever the interval.
  pair.write("records", "x", "y");
  snaps.request();
  const forced = sign();
  assert.equal(begun.at(-1), forced);
});

test("primary and backup write byte-identical snapshots from slices, checked against the evidence", async (t) => {
  const pair = await snapshotPair();
  const primaryDir = tempDir(t);
  const backupDir = tempDir(t);
  const backupLog = memoryLog();
  // A zero-length slice: one step per turn of the event loop, so the encoding spans many turns.
  const primarySnaps = new Snapshots(primaryDir, pair.primary, 2, memoryLog().log, 0, 0);
  const backupSnaps = new Snapshots(backupDir, pair.backup, 2, backupLog.log, 0, 0);
  for (let i = 0; i < 3000; i++) pair.write(i % 2 ? "records" : "public:open", `key${i}`, `value${i}`);
  primarySnaps.request();
  const { sig: at, entries } = signAndReplicate(pair, primarySnaps, backupSnaps);
  assert.deepEqual(evidenceWrites(entries), [{ seqno: at + 1, key: "begun", value: { version: at } }]);
  const stateThere = pair.primary.store.snapshot(at);
  // Writes go on while both encode.
  let writes = 0;
  let evidence: { seqno: number; value: { version: number; hash: string } } | undefined;
  await until(() => {
    pair.write("records", `during${writes++}`, "v");
    for (const entry of pair.replicate()) {
      backupSnaps.afterReplicated(entry);
      const found = evidenceWrites([entry]).find((w) => w.key === "evidence");
      if (found) evidence = found as typeof evidence;
    }
    return evidence !== undefined;
  });
  assert.ok(writes > 3, `the primary kept committing while it encoded (${writes} writes)`);
  assert.equal(evidence!.value.version, at);
  const { sig } = signAndReplicate(pair, primarySnaps, backupSnaps);
  pair.primary.markCommitted(sig);
  pair.backup.markCommitted(sig);
  await primarySnaps.committed(sig);
  await backupSnaps.committed(sig);
  const name = `snapshot_${at}_${evidence!.seqno}.committed`;
  assert.deepEqual(readdirSync(primaryDir), [name]);
  assert.deepEqual(readdirSync(backupDir), [name]);
  const primaryBytes = readFileSync(path.join(primaryDir, name));
  assert.deepEqual(readFileSync(path.join(backupDir, name)), primaryBytes, "byte-identical on both nodes");
  assert.equal(toHex(snapshotDigest(primaryBytes)), evidence!.value.hash);
  assert.deepEqual(decodeSnapshot(primaryBytes, pair.primary.secrets).snapshot, stateThere);
  assert.deepEqual(
    backupLog.lines.filter((l) => l.level >= 40),
    [],
    "the backup found its snapshot equal to the evidence",
  );
});

test("a rollback while slices are under way abandons the snapshot on the backup and on the primary", async (t) => {
  const pair = await snapshotPair();
  const primaryDir = tempDir(t);
  const backupDir = tempDir(t);
  const primarySnaps = new Snapshots(primaryDir, pair.primary, 2, memoryLog().log, 0, 0);
  const backupSnaps = new Snapshots(backupDir, pair.backup, 2, memoryLog().log, 0, 0);
  for (let i = 0; i < 3000; i++) pair.write("records", `key${i}`, `value${i}`);
  const base = pair.primary.emitSignature();
  pair.replicate();
  pair.primary.markCommitted(base);
  pair.backup.markCommitted(base);
  for (let i = 0; i < 5; i++) pair.write("records", `tail${i}`, "v");
  primarySnaps.request();
  const { sig: at } = signAndReplicate(pair, primarySnaps, backupSnaps);
  const backupJob = () => (backupSnaps as unknown as { job?: { active: boolean; slices: number } }).job;
  await until(() => (backupJob()?.slices ?? 0) >= 1);
  assert.equal(backupJob()?.active, true, "the backup is part-way through");

  // A new primary did not keep the signature: both roll back before it, mid-encoding.
  pair.backup.rollback(base);
  backupSnaps.rolledBack(base);
  assert.equal(backupJob(), undefined, "the backup's job is abandoned");
  pair.primary.rollback(base);
  primarySnaps.rolledBack(base);
  pair.accepting = false;
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(pair.primary.lastSeqno === base, "the primary recorded no evidence for a rolled-back snapshot");

  // The log moves on past the old seqnos in a new view; nothing is written for the abandoned one.
  pair.accepting = true;
  pair.primary.enterView(2);
  for (let i = 0; i < 5; i++) pair.write("records", `new${i}`, "v");
  const next = pair.primary.emitSignature();
  pair.replicate();
  pair.primary.markCommitted(next);
  pair.backup.markCommitted(next);
  assert.equal(await primarySnaps.committed(next), undefined);
  assert.equal(await backupSnaps.committed(next), undefined);
  assert.deepEqual(readdirSync(primaryDir), []);
  assert.deepEqual(readdirSync(backupDir), []);
  assert.ok(at > base);
});

test("a primary that loses its primacy while encoding records no evidence, and takes the next one later", async (t) => {
  const pair = await snapshotPair();
  const log = memoryLog();
  const snaps = new Snapshots(tempDir(t), pair.primary, 2, log.log, 0, 0);
  for (let i = 0; i < 3000; i++) pair.write("records", `key${i}`, "v");
  snaps.request();
  const at = pair.primary.emitSignature();
  snaps.afterSignature(at);
  const begunAt = pair.primary.lastSeqno;
  pair.accepting = false;
  const job = () => (snaps as unknown as { job?: { active: boolean } }).job;
  await until(() => job() === undefined);
  assert.equal(pair.primary.lastSeqno, begunAt, "no evidence entry");
  assert.deepEqual(
    log.lines.filter((l) => l.level >= 50),
    [],
  );
  // Primary again: nothing was recorded, so by the rule a snapshot is still due at the next signature.
  pair.accepting = true;
  pair.write("records", "again", "v");
  const next = pair.primary.emitSignature();
  snaps.afterSignature(next);
  assert.equal(pair.primary.lastSeqno, next + 1, "announced at the next signature");
});

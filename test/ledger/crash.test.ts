import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { scanChunk } from "../../src/ledger/chunks.ts";
import { LedgerError, LedgerFiles, readLedgerDir } from "../../src/ledger/index.ts";
import { budget } from "../e2e/waits.ts";
import { frameFor, tempDir, testSecrets } from "./helpers.ts";

const secrets = testSecrets();
const isSignature = (s: number) => s % 5 === 0;

/** A ledger with entries 1..n (chunkSize small so some chunks are closed); returns the open chunk. */
async function buildLedger(dir: string, n: number, chunkSize = 800): Promise<string> {
  const { ledger } = await LedgerFiles.open(dir, { chunkSize });
  for (let s = 1; s <= n; s++) ledger.append(s, frameFor(s, secrets), isSignature(s));
  await ledger.whenDurable(n);
  await ledger.close();
  const open = (await fs.readdir(dir)).find((f) => /^ledger_\d+$/.test(f));
  assert.ok(open);
  return path.join(dir, open);
}

async function sizeOf(file: string): Promise<number> {
  return (await fs.stat(file)).size;
}

/** Where the open chunk's last entry ends (its zero tail, preallocated space, follows). */
async function entriesEnd(file: string): Promise<number> {
  const name = path.basename(file);
  return scanChunk(new Uint8Array(await fs.readFile(file)), name, Number(/\d+/.exec(name))).goodLength;
}

async function audit(dir: string): Promise<number[]> {
  const seqnos: number[] = [];
  for await (const record of readLedgerDir(dir)) seqnos.push(record.entry.seqno);
  return seqnos;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

for (const [what, tail] of [
  ["half a frame", frameFor(23, secrets).subarray(0, 60)],
  [
    "a frame with a bad checksum",
    (() => {
      const f = Uint8Array.from(frameFor(23, secrets));
      f[100]! ^= 0xff;
      return f;
    })(),
  ],
  ["garbage", Uint8Array.from({ length: 300 }, (_, i) => (i * 37 + 11) % 256)],
  ["three bytes", Uint8Array.of(1, 0, 3)],
] as const) {
  test(`a torn tail of ${what} is cut off on open and reported`, async (t) => {
    const dir = await tempDir(t);
    const open = await buildLedger(dir, 22);
    const good = await entriesEnd(open);
    // Written where the next batch would go: over the start of the zero tail.
    const handle = await fs.open(open, "r+");
    await handle.write(tail, 0, tail.length, good);
    await handle.close();
    // The strict reader refuses it, naming where.
    await assert.rejects(audit(dir), (e: LedgerError) => {
      assert.ok(e instanceof LedgerError);
      assert.equal(e.file, path.basename(open));
      assert.equal(e.offset, good);
      assert.equal(e.seqno, 23);
      return /torn write/.test(e.message);
    });
    const { ledger, entries, truncatedBytes } = await LedgerFiles.open(dir, { chunkSize: 800 });
    // The torn bytes, up to the last non-zero one: zeros after it are the zero tail's.
    let torn = tail.length;
    while (tail[torn - 1] === 0) torn--;
    assert.equal(truncatedBytes, torn);
    assert.deepEqual(
      entries.map((e) => e.seqno),
      range(22),
    );
    assert.equal(await sizeOf(open), good);
    ledger.append(23, frameFor(23, secrets), false);
    await ledger.whenDurable(23);
    await ledger.close();
    assert.deepEqual(await audit(dir), range(23));
  });
}

test("an open chunk whose header was torn is rebuilt", async (t) => {
  const dir = await tempDir(t);
  const open = await buildLedger(dir, 20, 1); // every signature closes a chunk: the open one is empty
  assert.equal(path.basename(open), "ledger_21");
  await fs.writeFile(open, Uint8Array.of(0x43, 0x4f, 0x43));
  const { ledger, entries, truncatedBytes } = await LedgerFiles.open(dir);
  assert.deepEqual([entries.length, truncatedBytes], [20, 3]);
  ledger.append(21, frameFor(21, secrets), false);
  await ledger.close();
  assert.deepEqual(await audit(dir), range(21));
});

test("a crash between closing a chunk and creating the next leaves no open chunk: open makes one", async (t) => {
  const dir = await tempDir(t);
  const open = await buildLedger(dir, 20, 1);
  await fs.unlink(open);
  const { ledger, entries } = await LedgerFiles.open(dir);
  assert.equal(entries.length, 20);
  assert.ok((await fs.readdir(dir)).includes("ledger_21"));
  await ledger.close();
});

test("a bad frame followed by good ones in the open chunk is corruption, not a torn write", async (t) => {
  const dir = await tempDir(t);
  const open = await buildLedger(dir, 24, 1 << 20); // one open chunk holding everything
  const data = await fs.readFile(open);
  data[8 + 100]! ^= 0x01; // inside the first entry
  await fs.writeFile(open, data);
  await assert.rejects(LedgerFiles.open(dir), (e: LedgerError) => {
    assert.equal(e.file, path.basename(open));
    assert.equal(e.offset, 8);
    return /valid entries follow/.test(e.message);
  });
  assert.equal((await fs.readFile(open)).length, data.length, "nothing was truncated");
});

test("a damaged byte in a committed chunk stops open with the file's name", async (t) => {
  const dir = await tempDir(t);
  const { ledger } = await LedgerFiles.open(dir, { chunkSize: 800 });
  for (let s = 1; s <= 40; s++) ledger.append(s, frameFor(s, secrets), isSignature(s));
  await ledger.whenDurable(40);
  await ledger.markCommitted(40);
  await ledger.close();
  const committed = (await fs.readdir(dir)).filter((f) => f.endsWith(".committed")).sort();
  assert.ok(committed.length > 0);
  const victim = path.join(dir, committed[0]!);
  const data = await fs.readFile(victim);
  const mid = Math.floor(data.length / 2);
  data[mid]! ^= 0x20;
  await fs.writeFile(victim, data);
  const named = (e: LedgerError) => e instanceof LedgerError && e.file === committed[0];
  await assert.rejects(LedgerFiles.open(dir), named);
  await assert.rejects(audit(dir), named);
  // A cut-off tail of a closed chunk is not mistaken for a torn write either.
  data[mid]! ^= 0x20;
  await fs.writeFile(victim, data.subarray(0, data.length - 10));
  await assert.rejects(LedgerFiles.open(dir), /closed chunk is damaged/);
});

/** Writes a chunk file by hand from the documented layout: "COCOLDG" 0x01, then the frames. */
async function writeChunk(dir: string, name: string, from: number, to: number): Promise<void> {
  const frames = [];
  for (let s = from; s <= to; s++) frames.push(frameFor(s, secrets));
  await fs.writeFile(path.join(dir, name), Buffer.concat([Buffer.from("COCOLDG\x01", "latin1"), ...frames]));
}

test("gaps, overlaps, bad names and a closed chunk not ending on a signature are refused", async (t) => {
  const dir = await tempDir(t);
  await writeChunk(dir, "ledger_1-5", 1, 5);
  await writeChunk(dir, "ledger_6-10", 6, 10);
  await writeChunk(dir, "ledger_11", 11, 12);
  assert.deepEqual(await audit(dir), range(12));
  await fs.rename(path.join(dir, "ledger_6-10"), path.join(dir, "ledger_6-9"));
  await assert.rejects(
    LedgerFiles.open(dir),
    (e: LedgerError) => e.file === "ledger_11" && /gap/.test(e.message),
  );
  await fs.rename(path.join(dir, "ledger_6-9"), path.join(dir, "ledger_6-11"));
  await assert.rejects(LedgerFiles.open(dir), /overlaps/);
  await fs.rm(path.join(dir, "ledger_6-11"));
  await writeChunk(dir, "ledger_6-9", 6, 9);
  await writeChunk(dir, "ledger_10", 10, 12);
  await fs.rm(path.join(dir, "ledger_11"));
  await assert.rejects(
    LedgerFiles.open(dir),
    (e: LedgerError) => e.seqno === 9 && /end on a signature/.test(e.message),
  );
  await assert.rejects(audit(dir), /end on a signature/);
  await fs.rename(path.join(dir, "ledger_6-9"), path.join(dir, "ledger_6"));
  await assert.rejects(LedgerFiles.open(dir), /open chunk is followed by ledger_10/);
  await fs.rm(path.join(dir, "ledger_6"));
  await fs.rm(path.join(dir, "ledger_10"));
  await writeChunk(dir, "ledger_6", 6, 7);
  await fs.writeFile(path.join(dir, "ledger_x"), "");
  await assert.rejects(
    LedgerFiles.open(dir),
    (e: LedgerError) => e.file === "ledger_x" && /malformed/.test(e.message),
  );
  await fs.rm(path.join(dir, "ledger_x"));
  await fs.writeFile(path.join(dir, "notes.txt"), "other files are ignored");
  const { ledger, entries } = await LedgerFiles.open(dir);
  assert.equal(entries.length, 7);
  await ledger.close();
});

test("a chunk that starts with the wrong seqno or the wrong header is refused", async (t) => {
  const dir = await tempDir(t);
  await writeChunk(dir, "ledger_1-5", 2, 6);
  await assert.rejects(audit(dir), /expected seqno 1, found 2/);
  await fs.writeFile(path.join(dir, "ledger_1-5"), "this is not a ledger at all");
  await assert.rejects(LedgerFiles.open(dir), /bad file header/);
});

// Each round starts a child under tsx (about 4 s of a loaded machine's wall clock) and waits for
// ~35 durable batches, each a synced write: 6-10 s a round measured at load 10 a core.
test("kill -9 between batches: reopening finds the durable prefix intact and contiguous", {
  timeout: budget(30_000),
}, async (t) => {
  const dir = await tempDir(t);
  const script = fileURLToPath(new URL("./fixtures/append-forever.ts", import.meta.url));
  const root = fileURLToPath(new URL("../..", import.meta.url));
  for (let round = 0; round < 2; round++) {
    const child = spawn(process.execPath, ["--import", "tsx", script, dir], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    // The child never stops on its own: a failed or timed-out round must not leave it appending.
    t.after(() => child.kill("SIGKILL"));
    let reported = 0;
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const target = (round + 1) * 400;
    await new Promise<void>((resolve, reject) => {
      let buffered = "";
      child.stdout.on("data", (d: Buffer) => {
        buffered += d.toString();
        const lines = buffered.split("\n");
        buffered = lines.pop()!;
        for (const line of lines) reported = Math.max(reported, Number(line));
        if (reported >= target) resolve();
      });
      child.on("exit", (code) => reject(new Error(`child exited early (${code}): ${stderr}`)));
    });
    child.kill("SIGKILL"); // mid-stream: the child never stops appending on its own
    await new Promise((resolve) => child.once("close", resolve));
    const { ledger, entries } = await LedgerFiles.open(dir, { chunkSize: 2048 });
    assert.ok(entries.length >= reported, `durable ${reported} but only ${entries.length} on disk`);
    assert.deepEqual(
      entries.map((e) => e.seqno),
      range(entries.length),
    );
    await ledger.close();
    assert.deepEqual(await audit(dir), range(entries.length));
  }
});

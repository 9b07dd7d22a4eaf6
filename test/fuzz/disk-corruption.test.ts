import assert from "node:assert/strict";
import { cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { auditLedgerDir } from "../../src/cli/ledger.ts";
import { scanChunk } from "../../src/ledger/chunks.ts";
import { budget } from "../e2e/waits.ts";
import { startTestNetwork, type TestNetwork } from "../helpers/network.ts";

/**
 * Damage on disk, in a stopped node's ledger and snapshot files: flipped, truncated and
 * reordered bytes. The node must refuse to start and say where (or, for an interrupted last
 * write, cut only that torn tail), and `coco ledger audit` must name the first bad seqno.
 */

const commit = { "x-coco-wait": "commit" };
let net: TestNetwork;
let ledgerDir: string;
let pristine: string;

interface Frame {
  file: string;
  seqno: number;
  offset: number;
  length: number;
}
let frames: Frame[] = [];

function restore(): void {
  for (const sub of ["ledger", "snapshots"]) {
    rmSync(join(net.nodeDir, sub), { recursive: true, force: true });
    cpSync(join(pristine, sub), join(net.nodeDir, sub), { recursive: true });
  }
}

function framesOf(file: string): Frame[] {
  const bytes = new Uint8Array(readFileSync(join(ledgerDir, file)));
  const first = Number(/^ledger_(\d+)/.exec(file)![1]);
  const scan = scanChunk(bytes, file, first);
  return scan.entries.map(({ offset, entry }) => ({
    file,
    seqno: entry.seqno,
    offset,
    length: entry.frame.length,
  }));
}

function edit(file: string, change: (bytes: Buffer) => Buffer): void {
  const path = join(ledgerDir, file);
  writeFileSync(path, change(readFileSync(path)));
}

/** The node refuses to start; its error names `where` (a file, and a seqno or offset). */
async function refusesToStart(where: RegExp): Promise<void> {
  await assert.rejects(net.restart(), (error: unknown) => {
    assert.match(String(error instanceof Error ? error.message : error), where);
    return true;
  });
}

/** `coco ledger audit`, given the service certificate as a file. */
async function audit() {
  const certFile = join(net.dir, "service_cert_for_audit.pem");
  writeFileSync(certFile, net.serviceCertPem);
  return auditLedgerDir(ledgerDir, certFile);
}

describe("corruption on disk", { timeout: budget(300_000) }, () => {
  before(async () => {
    net = await startTestNetwork({ ledger: { chunkSize: 4096 }, snapshots: { txInterval: 10 } });
    for (let i = 0; i < 40; i++) {
      await net.call("PUT", `/app/log/public?id=${i}`, { body: { msg: "x".repeat(150) }, headers: commit });
    }
    await net.stop();
    ledgerDir = join(net.nodeDir, "ledger");
    // Where chunks end depends on when signatures fell: the open chunk may have just been closed.
    // Two tests need entries in it, so write a few more until it holds some (bounded).
    const openEntries = () =>
      readdirSync(ledgerDir)
        .filter((f) => /^ledger_\d+$/.test(f))
        .flatMap(framesOf).length;
    for (let round = 0; round < 5 && openEntries() < 2; round++) {
      await net.restart();
      for (let i = 0; i < 3; i++) {
        const id = 100 + round * 3 + i;
        await net.call("PUT", `/app/log/public?id=${id}`, { body: { msg: "y" }, headers: commit });
      }
      await net.stop();
    }
    pristine = join(net.dir, "pristine");
    for (const sub of ["ledger", "snapshots"])
      cpSync(join(net.nodeDir, sub), join(pristine, sub), { recursive: true });
    frames = readdirSync(ledgerDir)
      .filter((f) => f.startsWith("ledger_"))
      .flatMap(framesOf)
      .sort((a, b) => a.seqno - b.seqno);
    assert.ok(
      readdirSync(ledgerDir).filter((f) => f.endsWith(".committed")).length >= 2,
      "several committed chunks",
    );
    assert.ok(readdirSync(join(net.nodeDir, "snapshots")).length > 0, "a snapshot was written");
    assert.equal((await audit()).ok, true);
  });
  after(async () => {
    restore();
    await net.cleanup().catch(() => {});
  });

  const committedFrame = () => frames.find((f) => f.file.endsWith(".committed") && f.seqno > 3)!;

  it("a flipped byte inside a committed entry: refused at start, audit names its seqno", async () => {
    restore();
    const target = committedFrame();
    edit(target.file, (b) => {
      b[target.offset + Math.floor(target.length / 2)]! ^= 0x10;
      return b;
    });
    const report = await audit();
    assert.equal(report.ok, false);
    assert.equal(report.failure!.seqno, target.seqno, JSON.stringify(report.failure));
    await refusesToStart(new RegExp(target.file.replace(".", "\\.")));
  });

  it("a committed chunk cut short: refused, and the audit stops at the first missing seqno", async () => {
    restore();
    const target = committedFrame();
    edit(target.file, (b) => b.subarray(0, target.offset + 5));
    const report = await audit();
    assert.equal(report.ok, false);
    assert.equal(report.failure!.seqno, target.seqno, JSON.stringify(report.failure));
    await refusesToStart(new RegExp(`${target.file.replace(".", "\\.")}|seqno ${target.seqno}`));
  });

  it("two entries swapped inside a committed chunk: refused, audit names the first out of place", async () => {
    restore();
    const inFile = frames.filter((f) => f.file === committedFrame().file);
    const [a, b] = [inFile[1]!, inFile[2]!];
    edit(a.file, (bytes) =>
      Buffer.concat([
        bytes.subarray(0, a.offset),
        bytes.subarray(b.offset, b.offset + b.length),
        bytes.subarray(a.offset, a.offset + a.length),
        bytes.subarray(b.offset + b.length),
      ]),
    );
    const report = await audit();
    assert.equal(report.ok, false);
    assert.equal(report.failure!.seqno, a.seqno, JSON.stringify(report.failure));
    await refusesToStart(new RegExp(`${a.file.replace(".", "\\.")}.*|expected seqno ${a.seqno}`));
  });

  it("damage in the open chunk with valid entries after it is corruption, not a torn write", async () => {
    restore();
    const open = frames.filter((f) => /^ledger_\d+$/.test(f.file));
    assert.ok(open.length >= 2, `the open chunk holds ${open.length} entries`);
    const target = open[0]!;
    edit(target.file, (b) => {
      b[target.offset + 20]! ^= 0x01;
      return b;
    });
    const report = await audit();
    assert.equal(report.ok, false);
    assert.equal(report.failure!.seqno, target.seqno, JSON.stringify(report.failure));
    await refusesToStart(
      new RegExp(`${target.file}.*valid entries follow|valid entries follow.*${target.file}`),
    );
  });

  it("a torn last write is cut off, and only it: the node starts with everything committed", async () => {
    restore();
    const file = readdirSync(ledgerDir).find((f) => /^ledger_\d+$/.test(f))!;
    // Half of an entry that was being appended when the power went.
    const last = frames.filter((f) => f.file === file).at(-1)!;
    const half = readFileSync(join(ledgerDir, file)).subarray(
      last.offset,
      last.offset + Math.floor(last.length / 2),
    );
    edit(file, (b) => Buffer.concat([b, half]));
    await net.restart();
    try {
      const res = await net.call("GET", "/app/log/public?id=39");
      assert.equal(res.status, 200);
      assert.ok(net.running.node.state.lastSeqno >= last.seqno);
    } finally {
      await net.stop();
    }
  });

  it("a damaged snapshot is never used: the node replays its ledger instead and loses nothing", async () => {
    restore();
    const dir = join(net.nodeDir, "snapshots");
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const bytes = readFileSync(path);
      bytes[Math.floor(bytes.length / 2)]! ^= 0x04;
      writeFileSync(path, bytes);
    }
    await net.restart();
    try {
      assert.equal(net.running.node.state.historyStart, 0);
      const res = await net.call("GET", "/app/log/public?id=39");
      assert.equal(res.status, 200);
    } finally {
      await net.stop();
    }
  });
});

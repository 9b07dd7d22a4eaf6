/**
 * CPU per group-commit batch of the ledger's chunk files (`LedgerFiles`), for two source trees in
 * one process: each tree appends batches of entries to its own ledger directory and waits until
 * each batch is durable (one O_DSYNC write per batch on a node), in segments that alternate
 * between the trees (ABBA), each from a collected heap. The durable writes are every node's, per
 * batch: the primary's and each backup's.
 *
 *   node --expose-gc --import tsx bench/ledger-files-ab.ts --base DIR [--head DIR] [--pairs 16]
 *        [--batches 400] [--entries 8] [--chunk-size 4194304]
 *
 * `DIR` is another checkout's root (its src/ledger is loaded; e.g. `git archive main src | tar -x
 * -C DIR` with DIR/node_modules a link to this tree's). Prints JSON: CPU µs per batch
 * (process.cpuUsage, user + system, every thread of the process, so the thread pool's write is
 * counted) and wall ms per batch, medians per tree, the median of the per-pair ratios head/base,
 * their spread, and each tree's ledger stats. Entries are 8-byte keys with 110-byte values, every
 * 32nd a signature; the ledger directories are in the OS temporary directory (its file system is
 * what is measured).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

type LedgerModule = typeof import("../src/ledger/index.ts");

const { values } = parseArgs({
  options: {
    base: { type: "string" },
    head: { type: "string" },
    pairs: { type: "string", default: "16" },
    batches: { type: "string", default: "400" },
    entries: { type: "string", default: "8" },
    "chunk-size": { type: "string", default: String(4 * 1024 * 1024) },
  },
});
const pairs = Number(values.pairs);
const batches = Number(values.batches);
const perBatch = Number(values.entries);
const chunkSize = Number(values["chunk-size"]);
if (!values.base || ![pairs, batches, perBatch, chunkSize].every((n) => Number.isInteger(n) && n >= 1)) {
  process.stderr.write(
    "usage: ledger-files-ab.ts --base DIR [--head DIR] [--pairs N] [--batches N] [--entries N]\n",
  );
  process.exit(2);
}
const here = values.head ? resolve(values.head) : resolve(dirname(fileURLToPath(import.meta.url)), "..");
const cpu = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const gc = (globalThis as { gc?: () => void }).gc;

async function tree(root: string) {
  const ledger = (await import(resolve(root, "src/ledger/index.ts"))) as LedgerModule;
  const secrets = new ledger.LedgerSecrets([{ version: 0, key: new Uint8Array(32).fill(1) }]);
  const dir = mkdtempSync(join(tmpdir(), "ledger-files-ab-"));
  const { ledger: files } = await ledger.LedgerFiles.open(dir, { chunkSize });
  const isSignature = (seqno: number) => seqno % 32 === 0;
  const frame = (seqno: number) =>
    ledger.encodeEntry(
      {
        seqno,
        view: 1,
        type: isSignature(seqno) ? ledger.EntryType.Signature : ledger.EntryType.WriteSet,
        secretVersion: 0,
        claimsDigest: new Uint8Array(32),
        commitEvidenceDigest: new Uint8Array(32),
        writeSet: [
          {
            name: "records",
            updates: [{ key: new Uint8Array(8).fill(seqno & 255), value: new Uint8Array(110) }],
          },
        ],
      },
      secrets,
    );
  let next = 1;
  return {
    dir,
    files,
    async segment(): Promise<{ cpu: number; wall: number }> {
      const first = next;
      const frames = Array.from({ length: batches * perBatch }, (_, i) => frame(first + i));
      gc?.();
      const startCpu = cpu();
      const startWall = performance.now();
      for (let b = 0; b < batches; b++) {
        for (let i = 0; i < perBatch; i++, next++)
          files.append(next, frames[next - first]!, isSignature(next));
        await files.whenDurable(next - 1);
      }
      return { cpu: (cpu() - startCpu) / batches, wall: (performance.now() - startWall) / batches };
    },
  };
}

const base = await tree(resolve(values.base));
const head = await tree(here);
await base.segment(); // warm-up, not counted
await head.segment();
const cpus = { base: [] as number[], head: [] as number[] };
const walls = { base: [] as number[], head: [] as number[] };
const ratios: number[] = [];
for (let p = 0; p < pairs; p++) {
  const order = p % 2 === 0 ? ([base, head] as const) : ([head, base] as const);
  const [first, second] = [await order[0].segment(), await order[1].segment()];
  const [b, h] = order[0] === base ? [first, second] : [second, first];
  cpus.base.push(b.cpu);
  cpus.head.push(h.cpu);
  walls.base.push(b.wall);
  walls.head.push(h.wall);
  ratios.push(h.cpu / b.cpu);
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const round = (x: number, digits = 1) => Number(x.toFixed(digits));
console.log(
  JSON.stringify({
    pairs,
    batches,
    entriesPerBatch: perBatch,
    chunkSize,
    cpuUsPerBatch: { base: round(median(cpus.base)), head: round(median(cpus.head)) },
    wallMsPerBatch: { base: round(median(walls.base), 3), head: round(median(walls.head), 3) },
    ratioMedian: round(median(ratios), 3),
    ratioSpread: [round(Math.min(...ratios), 3), round(Math.max(...ratios), 3)],
    pairsBelow1: ratios.filter((r) => r < 1).length,
    ratios: ratios.map((r) => round(r, 3)),
    stats: { base: base.files.stats, head: head.files.stats },
  }),
);
await base.files.close();
await head.files.close();
for (const t of [base, head]) rmSync(t.dir, { recursive: true });

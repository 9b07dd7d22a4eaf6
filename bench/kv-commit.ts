/**
 * The KV part of a write on the primary, in one process, for two source trees side by side:
 * begin, one `set` of a fresh key (u64 big-endian, as the logging app writes), the write set read
 * once before commit (as src/rpc/app-dispatch.ts does), commit, and the store compacted behind
 * (as commits do). Segments alternate between the trees (ABBA), each from a collected heap.
 *
 *   node --expose-gc --import tsx bench/kv-commit.ts [--base DIR] [--head DIR] [--pairs 10] [--segment 20000] [--keys 200000]
 *
 * Prints CPU µs per write (process.cpuUsage, user + system) per segment and the median ratio
 * head/base. `DIR` is another checkout's root (its src/kv is loaded).
 */
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

type KvModule = typeof import("../src/kv/index.ts");

const { values } = parseArgs({
  options: {
    base: { type: "string" },
    head: { type: "string" },
    pairs: { type: "string", default: "10" },
    segment: { type: "string", default: "20000" },
    keys: { type: "string", default: "200000" },
  },
});
const here = values.head ? resolve(values.head) : resolve(dirname(fileURLToPath(import.meta.url)), "..");
const trees: Array<[string, KvModule]> = [
  ["head", (await import(resolve(here, "src/kv/index.ts"))) as KvModule],
];
if (values.base) trees.unshift(["base", (await import(resolve(values.base, "src/kv/index.ts"))) as KvModule]);

const segment = Number(values.segment);
const value = new TextEncoder().encode(JSON.stringify("x".repeat(100)));

function fill(kv: KvModule) {
  const store = new kv.Store();
  let next = 0;
  const write = () => {
    const key = new Uint8Array(8);
    new DataView(key.buffer).setBigUint64(0, BigInt(next++));
    const tx = store.begin();
    tx.map("records").set(key, value);
    tx.writeSet();
    const result = store.commit(tx);
    if (!result.ok) throw new Error("conflict");
    store.compact(Math.max(0, store.version - 64));
  };
  for (let i = 0; i < Number(values.keys); i++) write();
  return write;
}

const writers = trees.map(([name, kv]) => [name, fill(kv)] as const);
const gc = (globalThis as { gc?: () => void }).gc;
const samples = new Map<string, number[]>(trees.map(([name]) => [name, []]));
for (let pair = 0; pair < Number(values.pairs); pair++) {
  const order = pair % 2 === 0 ? writers : [...writers].reverse();
  for (const [name, write] of order) {
    gc?.();
    const before = process.cpuUsage();
    for (let i = 0; i < segment; i++) write();
    const used = process.cpuUsage(before);
    samples.get(name)!.push((used.user + used.system) / segment);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const [name, xs] of samples) {
  console.log(
    name,
    "µs/write median",
    median(xs).toFixed(2),
    "rounds",
    xs.map((x) => x.toFixed(2)).join(" "),
  );
}
if (samples.has("base")) {
  const b = samples.get("base")!;
  const h = samples.get("head")!;
  const ratios = h.map((x, i) => x / b[i]!);
  console.log(
    "head/base median",
    median(ratios).toFixed(3),
    "pairs",
    ratios.map((r) => r.toFixed(3)).join(" "),
  );
}

/**
 * A primary's CPU per ERC-20 transfer, by stage, from a V8 CPU profile of `bench:evm --cpu-prof
 * DIR` (or of `bench/evm-executor.ts` run with `node --cpu-prof`). Each sample goes to the first
 * stage, in the order below, that any frame of its stack belongs to, so a stage's figure includes
 * what it calls (keccak inside the interpreter counts as keccak, not as the interpreter).
 *
 *   npx tsx bench/evm-profile.ts FILE --from US --to US --ops 2560
 *
 * `--from`/`--to`: the load window `bench:evm` prints (`load_window_us`); `--ops`: transfers in it.
 * Samples are wall-clock: on a loaded machine a stage's share is right but its milliseconds
 * include time the process waited for a core; scale by the process's measured CPU per transfer.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { Profile } from "./cpuprofile.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { from: { type: "string" }, to: { type: "string" }, ops: { type: "string" } },
});
const file = positionals[0];
const ops = Number(values.ops);
if (!file || !(ops > 0)) {
  console.error("usage: evm-profile.ts FILE --ops N [--from US --to US]");
  process.exit(2);
}

/** Stages, first match wins: a frame's "function url" is tested against each pattern. */
const STAGES: Array<[string, RegExp]> = [
  ["EVM: jump-destination analysis", /^_getValidJumpDestinations /],
  ["EVM: sender recovery (libsecp256k1)", /src\/evm\/crypto\.ts|node_modules\/secp256k1\//],
  ["EVM: keccak-256", /src\/evm\/keccak\.ts|@noble\/hashes\/sha3/],
  ["EVM: decoding the transaction", /^decodeRawTx /],
  ["EVM: block header and seal", /^(seal|blockFor|createBlock) /],
  ["EVM: receipt and block records", /^(putTx|appendBlock) /],
  ["EVM: state flush into the KV", /^flush .*src\/evm\/state\.ts/],
  ["EVM: fast interpreter (src/evm/fast)", /src\/evm\/fast\//],
  ["EVM: ethereumjs execution and the rest of src/evm", /@ethereumjs\/|src\/evm\//],
  ["ledger signatures (COSE, P-384)", /^(coseSign1|signP384) |src\/node\/signing\.ts/],
  ["ledger: entries, encryption, Merkle, files", /src\/ledger\//],
  ["KV", /src\/kv\//],
  ["replication, consensus, node-to-node net", /src\/net\/|src\/consensus\/|src\/node\/replica\.ts/],
  [
    "rpc: HTTP, TLS, fastify, dispatch, commit wait",
    /src\/rpc\/|fastify|find-my-way|node:_http|node:_tls|node:net /,
  ],
  ["garbage collection", /^\(garbage collector\) /],
];

const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const from = values.from === undefined ? -Infinity : Number(values.from);
const to = values.to === undefined ? Infinity : Number(values.to);

const totals = new Map<string, number>();
let busy = 0;
let t = profile.startTime;
for (let i = 0; i < profile.samples.length; i++) {
  t += profile.timeDeltas[i]!;
  if (t < from || t > to) continue;
  const dt = profile.timeDeltas[i + 1] ?? 0;
  let id: number | undefined = profile.samples[i]!;
  if (byId.get(id)!.callFrame.functionName === "(idle)") continue;
  busy += dt;
  const frames: string[] = [];
  while (id !== undefined) {
    const { functionName, url } = byId.get(id)!.callFrame;
    frames.push(`${functionName} ${url}`);
    id = parent.get(id);
  }
  const stage = STAGES.find(([, re]) => frames.some((f) => re.test(f)))?.[0] ?? "other";
  totals.set(stage, (totals.get(stage) ?? 0) + dt);
}

const perOp = (us: number) => (us / 1000 / ops).toFixed(3).padStart(7);
console.log(`${perOp(busy)} ms per transfer busy (${(busy / 1e6).toFixed(1)} s over ${ops} transfers)`);
for (const [stage, us] of [...totals].sort((a, b) => b[1] - a[1])) {
  console.log(`${perOp(us)} ms  ${((100 * us) / busy).toFixed(1).padStart(5)}%  ${stage}`);
}

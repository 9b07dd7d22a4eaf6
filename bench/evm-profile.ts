/**
 * A primary's CPU per ERC-20 transfer, by stage, from a V8 CPU profile of `bench:evm --cpu-prof
 * DIR` (or of `bench/evm-executor.ts` run with `node --cpu-prof`). Each sample goes to the first
 * stage, in the order below, that any frame of its stack belongs to, so a stage's figure includes
 * what it calls (keccak inside the interpreter counts as keccak, not as the interpreter). The EVM's
 * stages come first; then Coco's replicated path, by bench/cpu-budget.ts's stages (signatures,
 * ledger entries, Merkle, KV, replication, the answer, the commit wait) and, for what none of them
 * claims, its outer layers (routing and auth, HTTP parsing, TLS and sockets) by innermost frame.
 *
 *   npx tsx bench/evm-profile.ts FILE --from US --to US --ops 2560 [--cpu-ms MS] [--top N]
 *
 * `--from`/`--to`: the load window `bench:evm` prints (`load_window_us`); `--ops`: transfers in it.
 * Samples are wall-clock: on a loaded machine a stage's share is right but its milliseconds
 * include time the process waited for a core; `--cpu-ms` (the process's measured CPU ms per
 * transfer) scales the stages to it, keeping the shares. `--top N` also lists the N functions
 * with the most self time in the window, for what the stages lump together (`--stage PREFIX`:
 * only within the stages whose name starts with PREFIX).
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { parseArgs } from "node:util";
import { STAGES as COCO_STAGES, LAYERS } from "./cpu-budget.ts";
import type { Profile } from "./cpuprofile.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    from: { type: "string" },
    to: { type: "string" },
    ops: { type: "string" },
    "cpu-ms": { type: "string" },
    top: { type: "string", default: "0" },
    stage: { type: "string" },
  },
});
const file = positionals[0];
const ops = Number(values.ops);
if (!file || !(ops > 0)) {
  console.error("usage: evm-profile.ts FILE --ops N [--from US --to US] [--cpu-ms MS] [--top N]");
  process.exit(2);
}

const REQUEST = "EVM: JSON-RPC request (body parse, bound accounts, private context, the answer's JSON)";

/** The EVM's stages, first match wins: a frame's "function url" is tested against each pattern. */
const EVM_STAGES: Array<[string, RegExp]> = [
  ["EVM: jump-destination analysis", /^_getValidJumpDestinations /],
  ["EVM: sender recovery (libsecp256k1)", /src\/evm\/crypto\.ts|node_modules\/secp256k1\//],
  ["EVM: keccak-256", /src\/evm\/keccak\.ts|@noble\/hashes\/sha3/],
  ["EVM: decoding the transaction", /^(decodeRawTx|decodeSignedTx) /],
  // Only src/evm's: the ledger's AES-GCM `seal` is a function of the same name.
  ["EVM: block header and seal", /^(seal|blockFor) .*src\/evm\/|^createBlock .*@ethereumjs\//],
  ["EVM: receipt and block records", /^(putTx|appendBlock|recordOf) /],
  ["EVM: state flush into the KV", /^flush .*src\/evm\/state\.ts/],
  ["EVM: fast interpreter (src/evm/fast)", /src\/evm\/fast\//],
  [
    REQUEST,
    /^(parse|needsPrimary|boundAddresses|privateContext|callerKeys|privateResolver|refuseNonJson|isMarker) .*src\/evm\//,
  ],
  ["EVM: ethereumjs execution and the rest of src/evm", /@ethereumjs\/|src\/evm\//],
];

/** cpu-budget.ts's label of a frame: `function@file`. */
function label(functionName: string, url: string): string {
  return `${functionName || "(anonymous)"}@${url ? basename(url).replace(/^node:/, "") : ""}`.replace(
    /@$/,
    "",
  );
}

const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const from = values.from === undefined ? -Infinity : Number(values.from);
const to = values.to === undefined ? Infinity : Number(values.to);

const stageOf = new Map<number, string>();
function classify(id: number): string {
  const known = stageOf.get(id);
  if (known !== undefined) return known;
  const full: string[] = [];
  const short: string[] = [];
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const { functionName, url } = byId.get(at)!.callFrame;
    full.push(`${functionName} ${url}`);
    short.push(label(functionName, url));
  }
  // Time in the executor's handler itself, or in what it calls directly outside src/evm (the
  // answer's JSON.stringify), is the request's, not the EVM's.
  const innermostEvm = full.find((f) => / .*src\/evm\//.test(f));
  let stage =
    innermostEvm !== undefined && /^handler .*src\/evm\/executor\.ts/.test(innermostEvm)
      ? REQUEST
      : (EVM_STAGES.find(([, re]) => full.some((f) => re.test(f)))?.[0] ??
        COCO_STAGES.find(([, re]) => short.some((f) => re.test(f)))?.[0]);
  if (stage === undefined) {
    for (const f of short) {
      const layer = LAYERS.find(([, re]) => re.test(f));
      if (layer) {
        stage = layer[0];
        break;
      }
    }
  }
  stage ??= "other (timers, microtasks, V8 and Node internals)";
  stageOf.set(id, stage);
  return stage;
}

const totals = new Map<string, number>();
const selfTime = new Map<string, number>();
let busy = 0;
let t = profile.startTime;
for (let i = 0; i < profile.samples.length; i++) {
  t += profile.timeDeltas[i]!;
  if (t < from || t > to) continue;
  const dt = profile.timeDeltas[i + 1] ?? 0;
  const id = profile.samples[i]!;
  const { functionName, url } = byId.get(id)!.callFrame;
  if (functionName === "(idle)") continue;
  busy += dt;
  const stage = classify(id);
  totals.set(stage, (totals.get(stage) ?? 0) + dt);
  if (values.stage !== undefined && !stage.startsWith(values.stage)) continue;
  const self = label(functionName, url);
  selfTime.set(self, (selfTime.get(self) ?? 0) + dt);
}

const cpuMs = values["cpu-ms"] === undefined ? undefined : Number(values["cpu-ms"]);
const scale = cpuMs === undefined ? 1 : (cpuMs * 1000 * ops) / busy;
const perOp = (us: number) => ((us * scale) / 1000 / ops).toFixed(3).padStart(7);
console.log(
  `${perOp(busy)} ms per transfer busy (${(busy / 1e6).toFixed(1)} s of samples over ${ops} transfers${
    cpuMs === undefined ? "" : `, scaled to ${cpuMs} ms of CPU`
  })`,
);
for (const [stage, us] of [...totals].sort((a, b) => b[1] - a[1])) {
  console.log(`${perOp(us)} ms  ${((100 * us) / busy).toFixed(1).padStart(5)}%  ${stage}`);
}
const top = Number(values.top);
if (top > 0) {
  console.log(`\nself time, top ${top}${values.stage === undefined ? "" : ` in ${values.stage}`}:`);
  for (const [name, us] of [...selfTime].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${perOp(us)} ms  ${((100 * us) / busy).toFixed(1).padStart(5)}%  ${name}`);
  }
}

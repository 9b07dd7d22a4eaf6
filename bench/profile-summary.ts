/**
 * Summarises V8 CPU profiles (`.cpuprofile`, e.g. from `bench:replicated -- --cpu-prof DIR`):
 * idle, GC and self time by function and by file, as shares of the profile's wall time.
 *
 *   npx tsx bench/profile-summary.ts FILE... [--top 30] [--from US --to US] [--under NAME]...
 *
 * `--under NAME` (repeatable) adds the inclusive time of the functions called NAME, split by the
 * callee it went to (e.g. `--under emitSignature` shows how much of a signature is signing).
 * `--from`/`--to` keep only samples in that window of the monotonic clock (the bench prints the
 * load's window as `load_window_us`), so start-up and shut-down do not count.
 *
 * Comparing two runs (e.g. the primaries of `bench:ab -- --cpu-prof DIR`'s base and head):
 *
 *   npx tsx bench/profile-summary.ts --compare A.cpuprofile B.cpuprofile --ops OPS_A,OPS_B \
 *     [--window FROM_A:TO_A,FROM_B:TO_B] [--top 40]
 *
 * prints each function's self time per operation (us) in A and in B and the difference, largest
 * differences first, so profiles of runs that did different amounts of work can be compared.
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { parseArgs } from "node:util";
import type { Profile } from "./cpuprofile.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    top: { type: "string", default: "30" },
    from: { type: "string" },
    to: { type: "string" },
    under: { type: "string", multiple: true, default: [] },
    compare: { type: "boolean", default: false },
    ops: { type: "string" },
    window: { type: "string" },
  },
});
const top = Number(values.top);

/** Where a URL points, shortened: the package for dependencies, the path under the repo otherwise. */
function place(url: string): string {
  if (url === "") return "(native)";
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0)
    return url
      .slice(nm + "node_modules/".length)
      .split("/")
      .slice(0, 1)
      .join("/");
  const src = url.search(/\/(src|bench|test)\//);
  if (src >= 0) return url.slice(src + 1);
  return url.replace(/^node:/, "node:");
}

function add(map: Map<string, number>, key: string, us: number): void {
  map.set(key, (map.get(key) ?? 0) + us);
}

function table(title: string, map: Map<string, number>, total: number): void {
  console.log(`  ${title}`);
  for (const [key, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(
      `    ${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${key}`,
    );
  }
}

/** Self time (us) by function name and place, inside [from, to], and the busy total. */
function selfByFunction(file: string, from: number, to: number): { self: Map<string, number>; busy: number } {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let at = profile.startTime;
  let busy = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    const us = profile.timeDeltas[i + 1] ?? 0;
    if (at < from || at > to) continue;
    const { functionName, url } = byId.get(profile.samples[i]!)!.callFrame;
    if (functionName === "(idle)") continue;
    busy += us;
    add(self, `${functionName || "(anonymous)"} ${place(url)}`, us);
  }
  return { self, busy };
}

function compare(): void {
  const [a, b] = positionals;
  const ops = (values.ops ?? "").split(",").map(Number);
  const windows = (values.window ?? "").split(",").map((w) => w.split(":").map(Number));
  if (!a || !b || positionals.length !== 2 || ops.length !== 2 || !ops.every((n) => n > 0)) {
    console.error(
      "usage: --compare A.cpuprofile B.cpuprofile --ops OPS_A,OPS_B [--window FROM_A:TO_A,FROM_B:TO_B]",
    );
    process.exit(2);
  }
  const span = (i: number) => [windows[i]?.[0] ?? -Infinity, windows[i]?.[1] ?? Infinity] as const;
  const A = selfByFunction(a, ...span(0));
  const B = selfByFunction(b, ...span(1));
  const perOp = (us: number | undefined, i: number) => (us ?? 0) / ops[i]!;
  console.log(
    `busy per operation: A ${perOp(A.busy, 0).toFixed(1)} us, B ${perOp(B.busy, 1).toFixed(1)} us (A ${basename(a)}, B ${basename(b)})`,
  );
  console.log("       A us      B us    B - A  function");
  const rows = [...new Set([...A.self.keys(), ...B.self.keys()])].map(
    (key) => [key, perOp(A.self.get(key), 0), perOp(B.self.get(key), 1)] as const,
  );
  rows.sort((x, y) => Math.abs(y[2] - y[1]) - Math.abs(x[2] - x[1]));
  for (const [key, x, y] of rows.slice(0, top)) {
    console.log(
      `  ${x.toFixed(1).padStart(8)}  ${y.toFixed(1).padStart(8)}  ${(y - x).toFixed(1).padStart(7)}  ${key}`,
    );
  }
}

if (values.compare) {
  compare();
  process.exit(0);
}

for (const file of positionals) {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  // A sample's delta is the time until the next sample, so each delta belongs to the sample before it.
  const from = values.from ? Number(values.from) : -Infinity;
  const to = values.to ? Number(values.to) : Infinity;
  let at = profile.startTime;
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    const us = profile.timeDeltas[i + 1] ?? 0;
    if (at < from || at > to) continue;
    total += us;
    selfUs.set(profile.samples[i]!, (selfUs.get(profile.samples[i]!) ?? 0) + us);
  }
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  let idle = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === "(idle)") {
      idle += us;
      continue;
    }
    add(byFunction, `${functionName || "(anonymous)"} ${place(url)}${url ? `:${lineNumber + 1}` : ""}`, us);
    add(byFile, place(url), us);
  }
  console.log(
    `${basename(file)}: ${(total / 1e6).toFixed(1)} s, busy ${(100 - (100 * idle) / total).toFixed(1)}%`,
  );
  table("by function (self)", byFunction, total);
  table("by file or package (self)", byFile, total);
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const label = (id: number) => {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    return `${functionName || "(anonymous)"} ${place(url)}${url ? `:${lineNumber + 1}` : ""}`;
  };
  for (const name of values.under) {
    // Each sample counts once, under the outermost frame called `name` on its stack.
    const byCallee = new Map<string, number>();
    let inclusive = 0;
    for (const [id, us] of selfUs) {
      let callee: number | undefined;
      let found = false;
      for (
        let at: number | undefined = id, below: number | undefined;
        at !== undefined;
        at = parent.get(at)
      ) {
        if (byId.get(at)!.callFrame.functionName === name) {
          found = true;
          callee = below;
        }
        below = at;
      }
      if (!found) continue;
      inclusive += us;
      add(byCallee, callee === undefined ? "(self)" : label(callee), us);
    }
    table(`under ${name}: ${(inclusive / 1000).toFixed(0)} ms inclusive`, byCallee, total);
  }
}

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
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { parseArgs } from "node:util";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    top: { type: "string", default: "30" },
    from: { type: "string" },
    to: { type: "string" },
    under: { type: "string", multiple: true, default: [] },
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

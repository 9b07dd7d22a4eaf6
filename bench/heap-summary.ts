/**
 * Summarises a sampling heap profile (`bench/rpc-path.ts --heap-sample DIR` writes one per tree):
 * bytes allocated per request by allocating function and by file, and, with `--under NAME`, the
 * bytes allocated below each function called NAME (inclusive), split by the callee they went to.
 *
 *   npx tsx bench/heap-summary.ts FILE --requests N [--top 30] [--under NAME]...
 *
 * N is the number of requests the profile covers (rounds x requests of the rpc-path run). The
 * sampler records one allocation in about every 1 KiB, scaled, so small figures are estimates.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    requests: { type: "string" },
    top: { type: "string", default: "30" },
    under: { type: "string", multiple: true, default: [] },
  },
});
const requests = Number(values.requests);
if (positionals.length !== 1 || !(requests > 0)) {
  console.error("usage: heap-summary.ts FILE --requests N [--top 30] [--under NAME]...");
  process.exit(2);
}
const top = Number(values.top);
const profile = JSON.parse(readFileSync(positionals[0]!, "utf8")) as { head: HeapNode };

function place(url: string): string {
  if (url === "") return "(native)";
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) return url.slice(nm + "node_modules/".length).split("/")[0]!;
  const src = url.search(/\/(src|bench|test)\//);
  return src >= 0 ? url.slice(src + 1) : url;
}

const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
const under = new Map<string, Map<string, number>>();
let total = 0;

function inclusive(node: HeapNode): number {
  let sum = node.selfSize;
  for (const child of node.children) sum += inclusive(child);
  return sum;
}

function walk(node: HeapNode, inside: Set<string>): void {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName || "(anonymous)";
  const key = `${name} ${place(url)}:${lineNumber + 1}`;
  total += node.selfSize;
  byFunction.set(key, (byFunction.get(key) ?? 0) + node.selfSize);
  byFile.set(place(url), (byFile.get(place(url)) ?? 0) + node.selfSize);
  const wanted = values.under!.includes(name) && !inside.has(name);
  if (wanted) {
    const split = under.get(name) ?? new Map<string, number>();
    under.set(name, split);
    split.set("(self)", (split.get("(self)") ?? 0) + node.selfSize);
    for (const child of node.children) {
      const c = `${child.callFrame.functionName || "(anonymous)"} ${place(child.callFrame.url)}`;
      split.set(c, (split.get(c) ?? 0) + inclusive(child));
    }
  }
  const next = wanted ? new Set([...inside, name]) : inside;
  for (const child of node.children) walk(child, next);
}
walk(profile.head, new Set());

function table(title: string, map: Map<string, number>): void {
  console.log(`${title}`);
  for (const [key, bytes] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`  ${(bytes / requests).toFixed(0).padStart(8)} B/req  ${key}`);
  }
}
console.log(`sampled allocation: ${(total / requests).toFixed(0)} bytes per request (${requests} requests)`);
table("by allocating function", byFunction);
table("by file", byFile);
for (const [name, split] of under) {
  const sum = [...split.values()].reduce((a, b) => a + b, 0);
  table(`under ${name}: ${(sum / requests).toFixed(0)} B/req`, split);
}

/**
 * What grew between two V8 heap snapshots of one process (`.heapsnapshot` files, as written by
 * `node:v8` writeHeapSnapshot or `--heapsnapshot-signal`): object counts and shallow sizes by
 * type and constructor name, largest growth first. For finding what a node keeps per transaction
 * (bench/long.ts --heap-snapshots writes the files).
 *
 *   node --max-old-space-size=8192 --import tsx bench/heap-diff.ts BEFORE AFTER [--top 30]
 *        [--retainers NAME]
 *
 * `--retainers NAME` also lists what holds the objects of constructor NAME in AFTER: the holder's
 * type and name and the property it is held by, most common first.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface HeapSnapshotFile {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[], ...unknown[]];
      edge_fields: string[];
      edge_types: [string[], ...unknown[]];
    };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

interface Group {
  count: number;
  bytes: number;
}

/** Objects by "type:name" (the constructor's name for objects, the kind for internal nodes). */
function groups(path: string): { total: Group; byKey: Map<string, Group> } {
  const file = JSON.parse(readFileSync(path, "utf8")) as HeapSnapshotFile;
  const fields = file.snapshot.meta.node_fields;
  const types = file.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const sizeAt = fields.indexOf("self_size");
  const byKey = new Map<string, Group>();
  const total = { count: 0, bytes: 0 };
  const nodes = file.nodes;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt]!]!;
    // Strings and code are grouped by kind only: their "names" are their contents.
    const name =
      type === "object" || type === "closure" || type === "native" ? file.strings[nodes[i + nameAt]!] : "";
    const key = `${type}:${name}`;
    const size = nodes[i + sizeAt]!;
    const group = byKey.get(key) ?? { count: 0, bytes: 0 };
    group.count++;
    group.bytes += size;
    byKey.set(key, group);
    total.count++;
    total.bytes += size;
  }
  return { total, byKey };
}

/** What holds the objects named `name`: "holder type:name .edge" with counts, most first. */
function retainers(path: string, name: string): Array<[string, number]> {
  const file = JSON.parse(readFileSync(path, "utf8")) as HeapSnapshotFile;
  const { node_fields, node_types, edge_fields, edge_types } = file.snapshot.meta;
  const width = node_fields.length;
  const edgeWidth = edge_fields.length;
  const typeAt = node_fields.indexOf("type");
  const nameAt = node_fields.indexOf("name");
  const countAt = node_fields.indexOf("edge_count");
  const edgeTypeAt = edge_fields.indexOf("type");
  const edgeNameAt = edge_fields.indexOf("name_or_index");
  const toAt = edge_fields.indexOf("to_node");
  const label = (node: number) =>
    `${node_types[0][file.nodes[node + typeAt]!]}:${file.strings[file.nodes[node + nameAt]!]}`;
  const counts = new Map<string, number>();
  let edge = 0;
  for (let node = 0; node < file.nodes.length; node += width) {
    const edges = file.nodes[node + countAt]!;
    for (let e = 0; e < edges; e++, edge += edgeWidth) {
      const to = file.edges[edge + toAt]!;
      if (file.strings[file.nodes[to + nameAt]!] !== name) continue;
      const kind = edge_types[0][file.edges[edge + edgeTypeAt]!];
      if (kind === "weak") continue;
      const raw = file.edges[edge + edgeNameAt]!;
      const via = kind === "element" || kind === "hidden" ? `[${kind}]` : `.${file.strings[raw]}`;
      const key = `${label(node)} ${via}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return [...counts].sort((a, b) => b[1] - a[1]);
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: "string", default: "30" }, retainers: { type: "string" } },
});
if (positionals.length !== 2) {
  console.error("usage: bench/heap-diff.ts BEFORE.heapsnapshot AFTER.heapsnapshot [--top N]");
  process.exit(2);
}
const [before, after] = positionals.map(groups) as [ReturnType<typeof groups>, ReturnType<typeof groups>];
const rows = new Set([...before.byKey.keys(), ...after.byKey.keys()]);
const diff = [...rows].map((key) => {
  const a = before.byKey.get(key) ?? { count: 0, bytes: 0 };
  const b = after.byKey.get(key) ?? { count: 0, bytes: 0 };
  return {
    key,
    count: b.count - a.count,
    bytes: b.bytes - a.bytes,
    countAfter: b.count,
    bytesAfter: b.bytes,
  };
});
diff.sort((x, y) => y.bytes - x.bytes);
const mb = (n: number) => (n / 1048576).toFixed(2);
console.log(
  `heap: ${mb(before.total.bytes)} MB in ${before.total.count} objects -> ${mb(after.total.bytes)} MB in ${after.total.count}`,
);
for (const row of diff.slice(0, Number(values.top))) {
  console.log(
    `${mb(row.bytes).padStart(8)} MB ${String(row.count).padStart(9)} objects  (now ${mb(row.bytesAfter)} MB, ${row.countAfter})  ${row.key}`,
  );
}
if (values.retainers) {
  console.log(`\nWhat holds ${values.retainers} in ${positionals[1]}:`);
  for (const [key, count] of retainers(positionals[1]!, values.retainers).slice(0, Number(values.top))) {
    console.log(`${String(count).padStart(9)}  ${key}`);
  }
}

import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import ts from "typescript";

/**
 * Coco's import rules, checked on the source text (test/architecture/imports.test.ts and
 * `npm run check:imports`):
 * (a) no file-level import cycle;
 * (b) a module (a folder directly under src/) imports another module only through its index.ts;
 * (c) nothing in src/rpc imports anything in src/node.
 * Every `import`, `export ... from`, `import type` and dynamic `import("...")` counts: type
 * imports are dependencies of the design even where they vanish from the running code.
 */

/** One import that breaks a rule, printed as `file -> import` (paths from the repo root). */
export interface Violation {
  rule: "cycle" | "internal" | "rpc-node";
  file: string;
  import: string;
}

export function describe(v: Violation): string {
  return `${v.file} -> ${v.import}`;
}

/** Relative `.ts` imports of every file under src/, as repo-relative paths. */
export function importGraph(root: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const srcDir = join(root, "src");
  for (const file of listTs(srcDir)) {
    const text = readFileSync(file, "utf8");
    const found = ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
    const targets = found
      .filter((spec) => spec.startsWith("."))
      .map((spec) => posix(relative(root, resolve(dirname(file), spec))));
    graph.set(posix(relative(root, file)), [...new Set(targets)].sort());
  }
  return graph;
}

function listTs(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listTs(path));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) out.push(path);
  }
  return out.sort();
}

function posix(path: string): string {
  return path.split(sep).join("/");
}

/** `src/<module>/...` → module; undefined for anything else. */
export function moduleOf(path: string): string | undefined {
  const parts = path.split("/");
  return parts[0] === "src" && parts.length > 2 ? parts[1] : undefined;
}

/** The files of each strongly connected component with more than one file (Tarjan). */
export function cycles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      const selfLoop = graph.get(v)?.includes(v) ?? false;
      if (component.length > 1 || selfLoop) out.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

/** Every import that breaks a rule. For a cycle, each import between files of the cycle. */
export function violations(graph: Map<string, string[]>): Violation[] {
  const out: Violation[] = [];
  for (const component of cycles(graph)) {
    const members = new Set(component);
    for (const file of component) {
      for (const target of graph.get(file) ?? []) {
        if (members.has(target)) out.push({ rule: "cycle", file, import: target });
      }
    }
  }
  for (const [file, targets] of graph) {
    const from = moduleOf(file);
    for (const target of targets) {
      const to = moduleOf(target);
      if (from !== undefined && to !== undefined && from !== to && target !== `src/${to}/index.ts`) {
        out.push({ rule: "internal", file, import: target });
      }
      if (from === "rpc" && to === "node") out.push({ rule: "rpc-node", file, import: target });
    }
  }
  return out;
}

const RULE_NAMES: Record<Violation["rule"], string> = {
  cycle: "file-level import cycle",
  internal: "imports another module's internal file instead of its index.ts",
  "rpc-node": "src/rpc imports src/node",
};

/** Violations not on the allowlist, and allowlist entries that no longer occur. */
export function compare(
  found: Violation[],
  allowed: Record<Violation["rule"], string[]>,
): { fresh: Violation[]; stale: Array<{ rule: Violation["rule"]; entry: string }> } {
  const fresh = found.filter((v) => !allowed[v.rule].includes(describe(v)));
  const stale: Array<{ rule: Violation["rule"]; entry: string }> = [];
  for (const rule of Object.keys(allowed) as Array<Violation["rule"]>) {
    for (const entry of allowed[rule]) {
      if (!found.some((v) => v.rule === rule && describe(v) === entry)) stale.push({ rule, entry });
    }
  }
  return { fresh, stale };
}

/** A report a person can act on: each import as `file -> import`, grouped by rule. */
export function report(violations: Violation[]): string {
  const lines: string[] = [];
  for (const rule of Object.keys(RULE_NAMES) as Array<Violation["rule"]>) {
    const of = violations.filter((v) => v.rule === rule);
    if (of.length === 0) continue;
    lines.push(`${RULE_NAMES[rule]}:`);
    for (const v of of) lines.push(`  ${describe(v)}`);
  }
  return lines.join("\n");
}

// `npm run check:imports`: the import rules of test/architecture/imports.test.ts, as a report.
import { fileURLToPath } from "node:url";
import { ALLOWED } from "./allowlist.ts";
import { compare, importGraph, report, violations } from "./import-graph.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const found = violations(importGraph(root));
const { fresh, stale } = compare(found, ALLOWED);
if (found.length > 0) console.log(`Allowlisted or new, every current violation:\n${report(found)}\n`);
if (stale.length > 0) {
  console.log("Gone, take off test/architecture/allowlist.ts:");
  for (const s of stale) console.log(`  ${s.rule}: ${s.entry}`);
}
if (fresh.length > 0) {
  console.error(`New violations:\n${report(fresh)}`);
  process.exitCode = 1;
} else {
  console.log(`No new import violations (${found.length} allowlisted).`);
}

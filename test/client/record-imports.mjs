// A module loader hook for tests: appends every module URL the process loads to the file named
// by COCO_RECORD_IMPORTS, one a line. Registered with `node --import` before anything else is
// loaded, it sees the whole import graph, static and dynamic imports alike.
import { appendFileSync } from "node:fs";
import { register } from "node:module";

const out = process.env.COCO_RECORD_IMPORTS;
if (!out) throw new Error("record-imports.mjs needs COCO_RECORD_IMPORTS");

register(
  `data:text/javascript,${encodeURIComponent(`
import { appendFileSync } from "node:fs";
export async function load(url, context, nextLoad) {
  appendFileSync(${JSON.stringify(out)}, url + "\\n");
  return nextLoad(url, context);
}
`)}`,
);
appendFileSync(out, "");

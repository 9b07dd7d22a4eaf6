/** `coco gov propose` and `coco gov vote` exit 1 when the proposal ends Rejected or Failed. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { outcomeExitCode } from "../../src/cli/gov.ts";

test("a Rejected or Failed proposal is a failed command, and says why", (t) => {
  const errors: string[] = [];
  t.mock.method(console, "error", (line: string) => errors.push(line));
  for (const state of ["Open", "Accepted", "Withdrawn"] as const) {
    assert.equal(outcomeExitCode({ proposalState: state }), 0, state);
  }
  assert.equal(outcomeExitCode({ proposalState: "Rejected" }), 1);
  assert.equal(
    outcomeExitCode({ proposalState: "Failed", failure: { reason: "apply threw: no such node" } }),
    1,
  );
  assert.deepEqual(errors, [
    "coco: the proposal ended Rejected",
    "coco: the proposal ended Failed: apply threw: no such node",
  ]);
});

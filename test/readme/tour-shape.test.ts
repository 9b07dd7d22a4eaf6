/** The README tour test's matching rules: what counts as the same shape, and drift that must fail. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { shapeProblem, tourBlocks } from "./tour.ts";

test("ids, numbers, hashes, base64 and dates may differ; words, keys and statuses may not", () => {
  const same: Array<[string, string]> = [
    [
      "receipt OK for 2.9: Merkle root 8e500f0c6efb...",
      "receipt OK for 3.41: Merkle root 1f2e3d4c5b6a7980aa",
    ],
    ["notAfter=Jan  6 10:30:00 2027 GMT", "notAfter=Dec 25 00:00:00 2026 GMT"],
    ['{"transaction_id":"2.9","status":"Committed"}', '{"status":"Committed","transaction_id":"3.12"}'],
    [
      '{"nodes":[{"node_id":"c2b7ea3c...","primary":false}]}',
      '{"nodes":[{"node_id":"ab12cd34ef","primary":true,"x":1}]}',
    ],
    [
      '{\n...\n  "proposalState": "Accepted",\n...\n}',
      '{\n  "a": 1,\n  "proposalState": "Accepted",\n  "b": 2\n}',
    ],
  ];
  for (const [shown, actual] of same)
    assert.equal(shapeProblem(shown, actual), undefined, `${shown} ~ ${actual}`);
  const drift: Array<[string, string]> = [
    ['{"transaction_id":"2.9","status":"Committed"}', '{"transaction_id":"2.9","status":"Invalid"}'],
    ['{"transaction_id":"2.9","status":"Committed"}', '{"error":{"code":"InvalidTxId"}}'],
    ["ledger OK: 12 transactions", "ledger INVALID at seqno 3"],
    ["not found in clear anywhere", "./node0/ledger/ledger_1"],
    ["receipt OK for 2.9\nexit 0", "receipt OK for 2.9"],
  ];
  for (const [shown, actual] of drift)
    assert.notEqual(shapeProblem(shown, actual), undefined, `${shown} !~ ${actual}`);
});

test("the tour's blocks: commands with continuations, and the output each shows", () => {
  const readme = [
    "## A five-minute tour",
    "```text\nstarting\n```",
    "```sh\ncd workspace\nf() { echo \\\n  hi; }\n```",
    "```console\n$ echo a \\\n    b\na b\n$ true\n```",
    "## Next",
    "```console\n$ not in the tour\n```",
  ].join("\n");
  assert.deepEqual(tourBlocks(readme), [
    { kind: "startup", text: "starting\n" },
    { kind: "setup", commands: ["cd workspace", "f() { echo \\\n  hi; }"] },
    {
      kind: "session",
      steps: [
        { command: "echo a \\\n    b", output: "a b" },
        { command: "true", output: "" },
      ],
    },
  ]);
});

import assert from "node:assert/strict";
import { test } from "node:test";
import { formatTxId, parseTxId, TxIdError } from "../../src/kv/txid.ts";

test("parses and formats view.seqno", () => {
  assert.deepEqual(parseTxId("2.15"), { view: 2, seqno: 15 });
  assert.equal(formatTxId({ view: 3, seqno: 7 }), "3.7");
  assert.deepEqual(parseTxId(formatTxId({ view: 0, seqno: 9007199254740991 })), {
    view: 0,
    seqno: 9007199254740991,
  });
});

test("refuses malformed ids", () => {
  for (const bad of [
    "",
    "2",
    "2.",
    ".3",
    "a.b",
    "-1.2",
    "1.-2",
    "01.2",
    " 1.2",
    "1.2.3",
    "1e3.2",
    "99999999999999999.1",
  ]) {
    assert.throws(() => parseTxId(bad), TxIdError, bad);
  }
});

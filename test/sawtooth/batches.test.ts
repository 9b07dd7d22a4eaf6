import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError, parseConfig } from "../../src/node/index.ts";
import { InvalidBatchError, parseBatchList } from "../../src/sawtooth/index.ts";
import { IntkeyClient } from "./intkey.ts";

const alice = new IntkeyClient();
const mallory = new IntkeyClient();

test("a batch signed with sawtooth-sdk/signing passes every check", () => {
  const batch = alice.batch([alice.transaction("set", "a", 1), alice.transaction("inc", "a", 2)]);
  const [checked] = parseBatchList(alice.batchList([batch]));
  assert.equal(checked!.id, batch.headerSignature);
  assert.equal(checked!.header.signerPublicKey, alice.publicKey);
  assert.deepEqual(
    checked!.transactions.map((t) => t.header.familyName),
    ["intkey", "intkey"],
  );
});

test("Sawtooth's structural rules refuse a batch", () => {
  const refuse = (bytes: Uint8Array, pattern: RegExp) =>
    assert.throws(
      () => parseBatchList(bytes),
      (e: unknown) => e instanceof InvalidBatchError && pattern.test(e.message),
    );
  refuse(alice.batchList([]), /no batches/);
  refuse(new Uint8Array([0xff, 0xff, 0xff]), /not a protobuf BatchList/);

  const tampered = alice.batch([alice.transaction("set", "a", 1)]);
  tampered.transactions[0].payload = Buffer.from("other");
  refuse(alice.batchList([tampered]), /payload_sha512/);

  // A transaction whose batcher_public_key names alice, inside a batch mallory signs.
  const stolen = mallory.batch([alice.transaction("set", "a", 1)]);
  refuse(alice.batchList([stolen]), /batcher_public_key/);

  const badSignature = alice.batch([alice.transaction("set", "a", 1)]);
  badSignature.headerSignature = "00".repeat(64);
  refuse(alice.batchList([badSignature]), /header signature/);

  const t1 = alice.transaction("set", "a", 1);
  const t2 = alice.transaction("set", "b", 1);
  const reordered = alice.batch([t1, t2]);
  reordered.transactions = [t2, t1];
  refuse(alice.batchList([reordered]), /transaction_ids/);
});

test("the sawtooth config key is checked", () => {
  const base = { dir: "n0", members: [{ cert: "m.pem" }] };
  assert.equal(parseConfig(base, "/tmp").sawtooth, null);
  const on = parseConfig({ ...base, sawtooth: { processorAddress: "tcp://127.0.0.1:4004" } }, "/tmp");
  assert.deepEqual(on.sawtooth, { processorAddress: "tcp://127.0.0.1:4004", processorTimeoutMs: 10_000 });
  assert.throws(
    () => parseConfig({ ...base, sawtooth: { processorAddress: "ipc:///x" } }, "/tmp"),
    ConfigError,
  );
  assert.throws(() => parseConfig({ ...base, sawtooth: { address: "tcp://a:1" } }, "/tmp"), ConfigError);
});

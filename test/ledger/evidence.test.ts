import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { test } from "node:test";
import {
  commitEvidence,
  commitEvidenceDigest,
  decodeEntry,
  encodeEntry,
  LedgerError,
  leafOf,
} from "../../src/ledger/index.ts";
import { key, sampleEntry, testSecrets } from "./helpers.ts";

const sha256 = (...parts: Uint8Array[]) => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};

test("commit evidence is ce:<view>.<seqno>:<HMAC nonce>", () => {
  const secret = key(5);
  const evidence = commitEvidence(secret, 3, 42);
  const nonce = createHmac("sha256", secret).update("coco-commit-evidence:3.42").digest("hex");
  assert.equal(evidence, `ce:3.42:${nonce}`);
  assert.match(evidence, /^ce:3\.42:[0-9a-f]{64}$/);
  assert.equal(commitEvidence(secret, 3, 42), evidence);
  assert.notEqual(commitEvidence(key(6), 3, 42), evidence);
  assert.notEqual(commitEvidence(secret, 4, 42), evidence);
  assert.notEqual(commitEvidence(secret, 3, 43), evidence);
  assert.deepEqual(commitEvidenceDigest(evidence), sha256(new TextEncoder().encode(evidence)));
});

test("commit evidence refuses a bad key or txid", () => {
  assert.throws(() => commitEvidence(new Uint8Array(31), 1, 1), LedgerError);
  assert.throws(() => commitEvidence(key(1), -1, 1), LedgerError);
  assert.throws(() => commitEvidence(key(1), 1, 2 ** 53), LedgerError);
});

test("the leaf hashes write set digest, evidence digest and claims digest, computable without secrets", () => {
  const secrets = testSecrets();
  const evidence = commitEvidence(secrets.current.key, 2, 17);
  const entry = { ...sampleEntry(17), commitEvidenceDigest: commitEvidenceDigest(evidence) };
  const decoded = decodeEntry(encodeEntry(entry, secrets));
  const leaf = leafOf(decoded.writeSetDigest, decoded.commitEvidenceDigest, decoded.claimsDigest);
  assert.deepEqual(
    leaf,
    sha256(decoded.writeSetDigest, sha256(new TextEncoder().encode(evidence)), new Uint8Array(32)),
  );
  assert.throws(
    () => leafOf(new Uint8Array(31), decoded.commitEvidenceDigest, decoded.claimsDigest),
    /32 bytes/,
  );
});

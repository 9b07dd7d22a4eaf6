import assert from "node:assert/strict";
import { test } from "node:test";
import { LedgerError, LedgerSecrets } from "../../src/ledger/index.ts";
import { key } from "./helpers.ts";

test("secrets are found by version; current is the newest", () => {
  const secrets = new LedgerSecrets([
    { version: 30, key: key(3) },
    { version: 0, key: key(1) },
  ]);
  secrets.add(12, key(2));
  assert.deepEqual(secrets.get(12), key(2));
  assert.equal(secrets.current.version, 30);
  assert.deepEqual(secrets.current.key, key(3));
  assert.deepEqual(
    secrets.list().map((s) => s.version),
    [0, 12, 30],
  );
  assert.equal(secrets.forSeqno(11).version, 0);
  assert.equal(secrets.forSeqno(12).version, 12);
  assert.equal(secrets.forSeqno(1000).version, 30);
});

test("secrets refuse bad input and unknown versions", () => {
  const secrets = new LedgerSecrets();
  assert.throws(() => secrets.current, /no ledger secret/);
  assert.throws(() => secrets.get(0), LedgerError);
  assert.throws(() => secrets.add(-1, key(1)), /version/);
  assert.throws(() => secrets.add(1.5, key(1)), /version/);
  assert.throws(() => secrets.add(1, new Uint8Array(16)), /32 bytes/);
  secrets.add(5, key(1));
  secrets.add(5, key(1)); // the same secret again is fine
  assert.throws(() => secrets.add(5, key(2)), /different key/);
  assert.throws(() => secrets.forSeqno(4), /no ledger secret is in effect at seqno 4/);
});

test("a secret is copied, so the caller's buffer cannot change it", () => {
  const raw = key(9);
  const secrets = new LedgerSecrets([{ version: 0, key: raw }]);
  raw.fill(0);
  assert.deepEqual(secrets.get(0), key(9));
});

import assert from "node:assert/strict";
import { before, test } from "node:test";
import {
  createServiceIdentity,
  generateP384KeyPair,
  nodeIdOf,
  p384PrivateKey,
  sha256,
} from "../../src/crypto/index.ts";
import { decodeEntry, decodeSnapshot, encodeEntry, LedgerSecrets } from "../../src/ledger/index.ts";
import type { Environment } from "../../src/node/env.ts";
import { LedgerState, LedgerStateError, type SigningKeys } from "../../src/node/ledger-state.ts";

/** A deterministic environment: a fixed clock and a counter for "random" bytes. */
function testEnv(): Environment {
  let counter = 0;
  return {
    now: () => 1_800_000_000_000,
    randomBytes: (n) => {
      const bytes = new Uint8Array(n);
      new DataView(bytes.buffer).setUint32(0, ++counter);
      return bytes;
    },
  };
}

let keys: SigningKeys;
let serviceCertPem: string;
const secretKey = new Uint8Array(32).fill(7);
const encoder = new TextEncoder();

before(async () => {
  const service = await createServiceIdentity({ now: new Date(), serial: new Uint8Array([1]) });
  const node = generateP384KeyPair();
  serviceCertPem = service.certPem;
  keys = {
    nodeId: nodeIdOf(node.publicKeyPem),
    nodeCertPem: service.certPem, // only used as the signer's cert in records; the key is what matters here
    nodePrivateKey: p384PrivateKey(node.privateKeyPem),
    servicePrivateKey: p384PrivateKey(service.privateKeyPem),
    serviceKid: sha256(encoder.encode("kid")),
  };
  // Records must carry a cert whose key verifies the node signature: use a cert for the node key.
  const { issueNodeCertificate } = await import("../../src/crypto/index.ts");
  keys.nodeCertPem = await issueNodeCertificate({
    service,
    nodePublicKeyPem: node.publicKeyPem,
    now: new Date(),
    serial: new Uint8Array([2]),
  });
});

function primaryAndBackup() {
  const frames: Uint8Array[] = [];
  const primary = new LedgerState(
    testEnv(),
    keys,
    new LedgerSecrets([{ version: 0, key: secretKey }]),
    {
      append: (_seqno, frame) => {
        frames.push(frame);
        return true;
      },
    },
    1,
  );
  const backup = new LedgerState(
    testEnv(),
    keys,
    new LedgerSecrets([{ version: 0, key: secretKey }]),
    {
      append: () => assert.fail("a backup does not create entries") as boolean,
    },
    1,
  );
  const write = (key: string, value: string) => {
    const tx = primary.store.begin();
    tx.map("records").set(encoder.encode(key), encoder.encode(value));
    tx.map("public:index").set(encoder.encode(key), encoder.encode("1"));
    const outcome = primary.commitTx(tx);
    assert.ok(outcome.ok && outcome.seqno !== null);
    return outcome.seqno;
  };
  const replicate = () => {
    for (const frame of frames.splice(0)) backup.applyReplicated(decodeEntry(frame));
  };
  return { primary, backup, frames, write, replicate };
}

test("a backup applying the primary's entries reaches the same state and Merkle root", () => {
  const { primary, backup, write, replicate } = primaryAndBackup();
  for (let i = 0; i < 10; i++) write(`k${i}`, `v${i}`);
  primary.emitSignature();
  write("k3", "changed");
  primary.emitSignature();
  replicate();
  assert.deepEqual(backup.store.snapshot(), primary.store.snapshot());
  assert.equal(backup.lastSignatureSeqno, primary.lastSignatureSeqno);
  backup.markCommitted(backup.lastSignatureSeqno);
  primary.markCommitted(primary.lastSignatureSeqno);
  const committed = backup.receipt(1, 3);
  assert.equal(committed.status, "ok");
  assert.deepEqual(committed, primary.receipt(1, 3));
  // The last signature is the commit point itself: its receipt needs a later signature.
  assert.equal(backup.receipt(1, backup.lastSignatureSeqno).status, "Pending");
});

test("a backup refuses a signature that does not match its own Merkle root, and changes nothing", () => {
  const { primary, backup, frames, write } = primaryAndBackup();
  write("a", "1");
  write("b", "2");
  primary.emitSignature();
  // Forge: replace the second write with a different one re-encrypted under the same secret.
  const secrets = new LedgerSecrets([{ version: 0, key: secretKey }]);
  const second = decodeEntry(frames[1]!);
  const forged = encodeEntry(
    {
      seqno: second.seqno,
      view: second.view,
      type: second.type,
      secretVersion: second.secretVersion,
      claimsDigest: second.claimsDigest,
      commitEvidenceDigest: second.commitEvidenceDigest,
      writeSet: [
        { name: "records", updates: [{ key: encoder.encode("b"), value: encoder.encode("forged") }] },
      ],
    },
    secrets,
  );
  backup.applyReplicated(decodeEntry(frames[0]!));
  backup.applyReplicated(decodeEntry(forged));
  const before = backup.store.snapshot();
  assert.throws(() => backup.applyReplicated(decodeEntry(frames[2]!)), /Merkle root does not match/);
  assert.deepEqual(backup.store.snapshot(), before);
  assert.equal(backup.lastSeqno, 2);
});

test("a backup refuses entries out of order and entries whose commit evidence does not match", () => {
  const { backup, frames, write, primary } = primaryAndBackup();
  write("a", "1");
  write("b", "2");
  primary.emitSignature();
  assert.throws(() => backup.applyReplicated(decodeEntry(frames[1]!)), /expected seqno 1/);
  const other = new LedgerSecrets([{ version: 0, key: new Uint8Array(32).fill(9) }]);
  const first = decodeEntry(frames[0]!);
  const wrongEvidence = encodeEntry(
    { ...first, commitEvidenceDigest: sha256(encoder.encode("ce:1.1:00")), writeSet: [] },
    other,
  );
  assert.throws(() => backup.applyReplicated(decodeEntry(wrongEvidence)), LedgerStateError);
  assert.equal(backup.lastSeqno, 0);
});

test("rollback drops the uncommitted suffix, fails its waiters, and later entries reuse the seqnos", async () => {
  const { primary, write } = primaryAndBackup();
  write("a", "1");
  const sig = primary.emitSignature();
  primary.markCommitted(sig);
  const lost = write("b", "2");
  const waiting = primary.waitForCommit(lost);
  primary.rollback(sig);
  await assert.rejects(waiting, /rolled back/);
  assert.equal(primary.store.read("records", encoder.encode("b")), undefined);
  assert.equal(primary.lastSeqno, sig);
  primary.enterView(2);
  const again = write("c", "3");
  assert.equal(again, lost);
  assert.equal(primary.txStatus(1, lost), "Invalid");
  assert.equal(primary.txStatus(2, again), "Pending");
  assert.throws(() => primary.rollback(0), /committed/);
});

test("a snapshot carries a node to the same state, Merkle root and receipts, and a forged anchor is refused", async () => {
  const { primary, backup, write, replicate, frames } = primaryAndBackup();
  for (let i = 0; i < 7; i++) write(`k${i}`, `v${i}`);
  const at = primary.emitSignature();
  const bytes = primary.encodeSnapshotAt(at);
  replicate();
  assert.deepEqual(backup.encodeSnapshotAt(at), bytes, "every node encodes the same snapshot bytes");
  const secrets = new LedgerSecrets([{ version: 0, key: secretKey }]);

  const fresh = new LedgerState(testEnv(), keys, secrets, { append: () => true }, 0);
  const prepared = fresh.prepareSnapshot(decodeSnapshot(bytes, secrets), serviceCertPem);
  assert.equal(prepared.seqno, at);
  fresh.installSnapshot(prepared);
  assert.deepEqual(fresh.store.snapshot(), primary.store.snapshot(at));
  assert.equal(fresh.historyStart, at);
  assert.equal(fresh.commitSeqno, at);
  assert.equal(fresh.txStatus(1, 2), "Committed", "the view history answers for transactions before it");
  assert.equal(fresh.txStatus(0, 2), "Invalid");

  // It carries on: the primary's next entries apply and sign over the same root.
  write("after", "snapshot");
  primary.emitSignature();
  write("one", "more");
  const last = primary.emitSignature();
  for (const frame of frames.splice(0)) fresh.applyReplicated(decodeEntry(frame));
  fresh.markCommitted(last);
  primary.markCommitted(last);
  assert.deepEqual(fresh.receipt(1, at + 1), primary.receipt(1, at + 1));
  assert.deepEqual(fresh.receipt(1, 3), { status: "BeforeSnapshot", snapshotSeqno: at });

  // Forgeries: another service's certificate; a tampered frontier (the signed root no longer matches).
  const other = await createServiceIdentity({ now: new Date(), serial: new Uint8Array([9]) });
  const target = () => new LedgerState(testEnv(), keys, secrets, { append: () => true }, 0);
  assert.throws(
    () => target().prepareSnapshot(decodeSnapshot(bytes, secrets), other.certPem),
    /service's signature over the Merkle root does not verify/,
  );
  const decoded = decodeSnapshot(bytes, secrets);
  decoded.anchor.treeFrontier.hashes[0] = sha256(encoder.encode("forged"));
  assert.throws(() => target().prepareSnapshot(decoded, serviceCertPem), /signed Merkle root does not match/);
  assert.throws(
    () => fresh.prepareSnapshot(decodeSnapshot(bytes, secrets), serviceCertPem),
    /not past this node's commit point/,
  );
});

import assert from "node:assert/strict";
import { before, test } from "node:test";
import {
  createServiceIdentity,
  generateP384KeyPair,
  issueNodeCertificate,
  nodeIdOf,
  p384PrivateKey,
  sha256,
} from "../../src/crypto/index.ts";
import {
  decodeEntry,
  decodeSnapshot,
  encodeEntry,
  jsonBytes,
  LedgerSecrets,
  SINGLETON_KEY,
  Tables,
} from "../../src/ledger/index.ts";
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
let service: { certPem: string; privateKeyPem: string };
/** Other nodes of the same service: each with a key and a certificate the service issued. */
let nodeB: SigningKeys;
let nodeP: SigningKeys;
let nodeKeyPems: Map<string, string>;
const secretKey = new Uint8Array(32).fill(7);
const encoder = new TextEncoder();

before(async () => {
  service = await createServiceIdentity({ now: new Date(), serial: new Uint8Array([1]) });
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
  keys.nodeCertPem = await issueNodeCertificate({
    service,
    nodePublicKeyPem: node.publicKeyPem,
    now: new Date(),
    serial: new Uint8Array([2]),
  });
  nodeKeyPems = new Map([[keys.nodeId, node.publicKeyPem]]);
  nodeB = await otherNode(3);
  nodeP = await otherNode(4);
});

async function otherNode(serial: number): Promise<SigningKeys> {
  const pair = generateP384KeyPair();
  const nodeId = nodeIdOf(pair.publicKeyPem);
  nodeKeyPems.set(nodeId, pair.publicKeyPem);
  return {
    nodeId,
    nodeCertPem: await issueNodeCertificate({
      service,
      nodePublicKeyPem: pair.publicKeyPem,
      now: new Date(),
      serial: new Uint8Array([serial]),
    }),
    nodePrivateKey: p384PrivateKey(pair.privateKeyPem),
    servicePrivateKey: keys.servicePrivateKey,
    serviceKid: keys.serviceKid,
  };
}

/** Records `signer` as a node with `status` and an endorsed certificate (and the service, once). */
function genesis(state: LedgerState, signer: SigningKeys, status = "Trusted"): number {
  const tx = state.store.begin();
  if (!state.store.read(Tables.serviceInfo, SINGLETON_KEY)) {
    tx.map(Tables.serviceInfo).set(SINGLETON_KEY, jsonBytes({ cert: serviceCertPem, status: "Open" }));
  }
  const id = encoder.encode(signer.nodeId);
  tx.map(Tables.nodesInfo).set(id, jsonBytes({ status, cert: signer.nodeCertPem, rpc_address: "x:1" }));
  tx.map(Tables.nodesEndorsedCertificates).set(id, encoder.encode(signer.nodeCertPem));
  const outcome = state.commitTx(tx);
  assert.ok(outcome.ok && outcome.seqno !== null);
  return outcome.seqno;
}

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
  // Seqno 1, as a new service's: the service and its first node, trusted, with its certificate.
  genesis(primary, keys);
  replicate();
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
  assert.equal(backup.lastSeqno, 3);
});

test("a backup refuses entries out of order and entries whose commit evidence does not match", () => {
  const { backup, frames, write, primary } = primaryAndBackup();
  write("a", "1");
  write("b", "2");
  primary.emitSignature();
  assert.throws(() => backup.applyReplicated(decodeEntry(frames[1]!)), /expected seqno 2/);
  const other = new LedgerSecrets([{ version: 0, key: new Uint8Array(32).fill(9) }]);
  const first = decodeEntry(frames[0]!);
  const wrongEvidence = encodeEntry(
    { ...first, commitEvidenceDigest: sha256(encoder.encode("ce:1.1:00")), writeSet: [] },
    other,
  );
  assert.throws(() => backup.applyReplicated(decodeEntry(wrongEvidence)), LedgerStateError);
  assert.equal(backup.lastSeqno, 1);
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

// ---------------------------------------------------------------------------------------------
// Who may sign: a Trusted node with its endorsed certificate, one per view, the view's primary.

/**
 * A node holding the same ledger as `source` (every frame it made so far), in `view`: it can sign
 * the same Merkle root with its own key, as a node that received the ledger could.
 */
function mirror(signer: SigningKeys, frames: Uint8Array[], view: number) {
  const made: Uint8Array[] = [];
  const state = new LedgerState(
    testEnv(),
    signer,
    new LedgerSecrets([{ version: 0, key: secretKey }]),
    { append: (_s, frame) => made.push(frame) > 0 },
    1,
  );
  for (const frame of frames) state.applyReplicated(decodeEntry(frame));
  state.enterView(view);
  return { state, made };
}

test("a backup refuses a signature by a Pending node with a service-endorsed certificate, and applies nothing", () => {
  const frames: Uint8Array[] = [];
  const primary = new LedgerState(
    testEnv(),
    keys,
    new LedgerSecrets([{ version: 0, key: secretKey }]),
    { append: (_s, frame) => frames.push(frame) > 0 },
    1,
  );
  genesis(primary, keys);
  genesis(primary, nodeP, "Pending"); // joined, waiting for governance
  primary.emitSignature();
  const tx = primary.store.begin();
  tx.map("records").set(encoder.encode("k"), encoder.encode("v"));
  primary.commitTx(tx);
  // The Pending node holds the ledger (the primary replicates to it) and signs its root itself.
  const forger = mirror(nodeP, frames, 1);
  forger.state.emitSignature();
  const forged = forger.made[0]!;
  const backup = mirror(nodeB, frames, 1).state;
  const before = { store: backup.store.snapshot(), last: backup.lastSeqno, sig: backup.lastSignatureSeqno };
  assert.throws(
    () => backup.applyReplicated(decodeEntry(forged), { view: 1, primary: nodeP.nodeId }),
    new RegExp(`seqno 5: signed by node ${nodeP.nodeId} which is not Trusted at seqno 5 \\(it is Pending\\)`),
  );
  // Even without a sender (a restart replaying its files), the rule alone refuses it.
  assert.throws(() => backup.applyReplicated(decodeEntry(forged)), /not Trusted at seqno 5/);
  assert.deepEqual(backup.store.snapshot(), before.store);
  assert.equal(backup.lastSeqno, before.last);
  assert.equal(backup.lastSignatureSeqno, before.sig);
  // The real primary's signature over the same root still applies.
  primary.emitSignature();
  backup.applyReplicated(decodeEntry(frames.at(-1)!), { view: 1, primary: keys.nodeId });
  assert.equal(backup.lastSignatureSeqno, 5);

  // Replay from files: a ledger holding the forged signature does not restore.
  const onDisk = [...frames.slice(0, 4), forged].map((f) => decodeEntry(f));
  assert.throws(
    () =>
      LedgerState.restore({
        env: testEnv(),
        keys: nodeB,
        secrets: new LedgerSecrets([{ version: 0, key: secretKey }]),
        sink: { append: () => true },
        entries: onDisk,
      }),
    /which is not Trusted at seqno 5/,
  );
});

test("one signer per view: a second Trusted node signing in a view already signed is refused", () => {
  const frames: Uint8Array[] = [];
  const primary = new LedgerState(
    testEnv(),
    keys,
    new LedgerSecrets([{ version: 0, key: secretKey }]),
    { append: (_s, frame) => frames.push(frame) > 0 },
    1,
  );
  genesis(primary, keys);
  genesis(primary, nodeB);
  primary.emitSignature(); // view 1 is keys.nodeId's
  const tx = primary.store.begin();
  tx.map("records").set(encoder.encode("k"), encoder.encode("v"));
  primary.commitTx(tx);
  const other = mirror(nodeB, frames, 1);
  other.state.emitSignature();
  const backup = mirror(nodeP, frames, 1).state;
  assert.throws(
    () => backup.applyReplicated(decodeEntry(other.made[0]!)),
    new RegExp(`view 1 signed by two nodes: ${keys.nodeId} and ${nodeB.nodeId}`),
  );
  assert.equal(backup.lastSeqno, 4);

  // In view 2, B may be primary: its first signature there fixes it, if B sent it.
  const inView2 = mirror(nodeB, frames, 2);
  inView2.state.emitSignature();
  const sig2 = decodeEntry(inView2.made[0]!);
  assert.throws(
    () => backup.applyReplicated(sig2, { view: 2, primary: keys.nodeId }),
    new RegExp(`signed by node ${nodeB.nodeId}, but view 2's entries come from its primary ${keys.nodeId}`),
  );
  assert.equal(backup.lastSeqno, 4);
  backup.applyReplicated(sig2, { view: 2, primary: nodeB.nodeId });
  assert.equal(backup.lastSignatureSeqno, 5);
  // A newer primary relaying view 2's entries later is fine: only the current view names a sender.
  const late = mirror(nodeP, frames, 1).state;
  late.applyReplicated(sig2, { view: 3, primary: keys.nodeId });
  assert.equal(late.lastSignatureSeqno, 5);
});

test("the signature must carry the signer's endorsed certificate, or a renewal of it the service issued", async () => {
  const frames: Uint8Array[] = [];
  const primary = new LedgerState(
    testEnv(),
    keys,
    new LedgerSecrets([{ version: 0, key: secretKey }]),
    { append: (_s, frame) => frames.push(frame) > 0 },
    1,
  );
  genesis(primary, keys);
  genesis(primary, nodeP, "Pending");
  const backup = mirror(nodeB, frames, 1).state;
  const fresh = () => mirror(nodeB, frames, 1).state;

  // The Pending node names the Trusted node as signer but signs with its own key and certificate.
  const impostor = mirror({ ...nodeP, nodeId: keys.nodeId }, frames, 1);
  impostor.state.emitSignature();
  assert.throws(
    () => fresh().applyReplicated(decodeEntry(impostor.made[0]!)),
    /is not node .* endorsed certificate: its key differs/,
  );

  // A renewed certificate for the same key, issued by the service: accepted (the node signs with it
  // before, or after, the ledger records it).
  const renewed = await issueNodeCertificate({
    service,
    nodePublicKeyPem: nodeKeyPems.get(keys.nodeId)!,
    now: new Date(),
    serial: new Uint8Array([7]),
  });
  const renewedSigner = mirror({ ...keys, nodeCertPem: renewed }, frames, 1);
  renewedSigner.state.emitSignature();
  backup.applyReplicated(decodeEntry(renewedSigner.made[0]!));
  assert.equal(backup.lastSignatureSeqno, 3);

  // The same key in a certificate another service issued: refused.
  const otherService = await createServiceIdentity({ now: new Date(), serial: new Uint8Array([8]) });
  const foreign = await issueNodeCertificate({
    service: otherService,
    nodePublicKeyPem: nodeKeyPems.get(keys.nodeId)!,
    now: new Date(),
    serial: new Uint8Array([9]),
  });
  const foreignSigner = mirror({ ...keys, nodeCertPem: foreign }, frames, 1);
  foreignSigner.state.emitSignature();
  assert.throws(
    () => fresh().applyReplicated(decodeEntry(foreignSigner.made[0]!)),
    /endorsed certificate: it is not issued by the service/,
  );
});

test("a retiring primary signs on in its view; once retired it cannot start another", () => {
  const frames: Uint8Array[] = [];
  const primary = new LedgerState(
    testEnv(),
    keys,
    new LedgerSecrets([{ version: 0, key: secretKey }]),
    { append: (_s, frame) => frames.push(frame) > 0 },
    1,
  );
  genesis(primary, keys);
  genesis(primary, nodeB);
  primary.emitSignature();
  genesis(primary, keys, "Retired"); // governance retires the primary itself
  primary.emitSignature(); // it signs, so that its removal can commit
  const backup = mirror(nodeP, frames, 1).state;
  assert.equal(backup.lastSignatureSeqno, 5);
  // A snapshot taken at that signature carries a new node on, though the view's start is not in it.
  const secrets = new LedgerSecrets([{ version: 0, key: secretKey }]);
  const fresh = new LedgerState(testEnv(), nodeB, secrets, { append: () => true }, 0);
  const snapshot = decodeSnapshot(primary.encodeSnapshotAt(5), secrets);
  assert.equal(fresh.prepareSnapshot(snapshot, serviceCertPem).seqno, 5);
  const frozen = [...frames];
  primary.enterView(2);
  primary.emitSignature();
  assert.throws(
    () => backup.applyReplicated(decodeEntry(frames.at(-1)!)),
    /which is not Trusted at seqno 6 \(it is Retired\)/,
  );
  // Its successor takes view 2.
  const successor = mirror(nodeB, frozen, 2);
  successor.state.emitSignature();
  backup.applyReplicated(decodeEntry(successor.made[0]!), { view: 2, primary: nodeB.nodeId });
  assert.equal(backup.lastSignatureSeqno, 6);
});

test("rolling back a view's first signature frees the view (the rules follow rollback)", () => {
  const frames: Uint8Array[] = [];
  const primary = new LedgerState(
    testEnv(),
    keys,
    new LedgerSecrets([{ version: 0, key: secretKey }]),
    { append: (_s, frame) => frames.push(frame) > 0 },
    1,
  );
  genesis(primary, keys);
  genesis(primary, nodeB);
  primary.emitSignature();
  const base = [...frames];
  const backup = mirror(nodeP, base, 1).state;
  primary.enterView(2);
  primary.emitSignature();
  backup.applyReplicated(decodeEntry(frames.at(-1)!));
  backup.rollback(3);
  const other = mirror(nodeB, base, 2);
  other.state.emitSignature();
  backup.applyReplicated(decodeEntry(other.made[0]!), { view: 2, primary: nodeB.nodeId });
  assert.equal(backup.lastSignatureSeqno, 4);
});

import assert from "node:assert/strict";
import { before, test } from "node:test";
import {
  createServiceIdentity,
  generateP384KeyPair,
  issueNodeCertificate,
  nodeIdOf,
  p384PrivateKey,
  sha256,
  verifyCoseReceipt,
  verifyJsonReceipt,
} from "../../src/crypto/index.ts";
import {
  type DecodedEntry,
  decodeEntry,
  decodeSnapshot,
  jsonBytes,
  type LedgerArchive,
  LedgerSecrets,
  LedgerState,
  LedgerStateError,
  type ReceiptInMemory,
  type ReceiptLookup,
  SINGLETON_KEY,
  type SigningKeys,
  Tables,
} from "../../src/ledger/index.ts";

// Receipts of transactions whose proofs left memory: rebuilt from the ledger entries, the same
// bytes a node that kept everything gives, and checked before they are served.

const encoder = new TextEncoder();
const secretKey = new Uint8Array(32).fill(7);
const WINDOW = 30;
const TRANSACTIONS = 4_300; // past one 4,096-transaction page, so pages are dropped for real
const SIGN_EVERY = 50;

let keys: SigningKeys;
let serviceCertPem: string;
/** The primary's frames, in seqno order (frames[i] is seqno i + 1): the ledger files. */
const frames: Uint8Array[] = [];
let primary: LedgerState;
/** A backup that keeps every proof in memory: the reference. */
let keeper: LedgerState;
let snapshot: { seqno: number; bytes: Uint8Array } | undefined;
const signatures: number[] = [];

const env = () => {
  let counter = 0;
  return {
    now: () => 1_800_000_000_000,
    randomBytes: (n: number) => {
      const bytes = new Uint8Array(n);
      new DataView(bytes.buffer).setUint32(0, ++counter);
      return bytes;
    },
  };
};
const secrets = () => new LedgerSecrets([{ version: 0, key: secretKey }]);

/** The ledger files as an archive, optionally altered or cut short. */
function archiveOf(alter: (entry: DecodedEntry) => DecodedEntry | undefined = (e) => e): LedgerArchive {
  return {
    async *entriesFrom(from) {
      for (const frame of frames.slice(from - 1)) {
        const entry = alter(decodeEntry(frame));
        if (entry === undefined) return;
        yield entry;
      }
    },
  };
}

before(async () => {
  const service = await createServiceIdentity({ now: new Date(), serial: new Uint8Array([1]) });
  serviceCertPem = service.certPem;
  const node = generateP384KeyPair();
  keys = {
    nodeId: nodeIdOf(node.publicKeyPem),
    nodeCertPem: await issueNodeCertificate({
      service,
      nodePublicKeyPem: node.publicKeyPem,
      now: new Date(),
      serial: new Uint8Array([2]),
    }),
    nodePrivateKey: p384PrivateKey(node.privateKeyPem),
    servicePrivateKey: p384PrivateKey(service.privateKeyPem),
    serviceKid: sha256(encoder.encode("kid")),
  };
  primary = new LedgerState(env(), keys, secrets(), { append: (_s, frame) => frames.push(frame) > 0 }, 1);
  primary.receiptWindow = WINDOW;
  primary.archive = archiveOf();
  keeper = new LedgerState(env(), keys, secrets(), { append: () => false }, 1);
  keeper.receiptWindow = Number.POSITIVE_INFINITY;
  const tx0 = primary.store.begin();
  tx0.map(Tables.serviceInfo).set(SINGLETON_KEY, jsonBytes({ cert: serviceCertPem, status: "Open" }));
  const id = encoder.encode(keys.nodeId);
  tx0
    .map(Tables.nodesInfo)
    .set(id, jsonBytes({ status: "Trusted", cert: keys.nodeCertPem, rpc_address: "x:1" }));
  tx0.map(Tables.nodesEndorsedCertificates).set(id, encoder.encode(keys.nodeCertPem));
  primary.commitTx(tx0);
  let applied = 0;
  while (primary.lastSeqno < TRANSACTIONS) {
    for (let i = 0; i < SIGN_EVERY; i++) {
      const tx = primary.store.begin();
      tx.map("records").set(
        encoder.encode(`k${primary.lastSeqno % 97}`),
        encoder.encode(`v${primary.lastSeqno}`),
      );
      // Some transactions bind claims: their digest must come back from the ledger too.
      primary.commitTx(
        tx,
        primary.lastSeqno % 7 === 0 ? sha256(encoder.encode(`claims ${primary.lastSeqno}`)) : undefined,
      );
    }
    const sig = primary.emitSignature();
    signatures.push(sig);
    if (!snapshot && sig > 1500) snapshot = { seqno: sig, bytes: primary.encodeSnapshotAt(sig) };
    for (; applied < frames.length; applied++) keeper.applyReplicated(decodeEntry(frames[applied]!));
    primary.markCommitted(sig);
    keeper.markCommitted(sig);
  }
});

function checkReceipt(found: ReceiptLookup, seqno: number, reference: ReceiptInMemory): void {
  assert.equal(found.status, "ok", `receipt of ${seqno}`);
  assert.deepEqual(found, reference, `receipt of ${seqno} equals the one from a node that kept everything`);
  if (found.status !== "ok") return;
  const json = verifyJsonReceipt(found.json, serviceCertPem);
  assert.ok(json.ok, `JSON receipt of ${seqno}: ${!json.ok && json.message}`);
  assert.equal(json.txid, `1.${seqno}`);
  const cose = verifyCoseReceipt(found.cose, serviceCertPem);
  assert.ok(cose.ok, `COSE receipt of ${seqno}: ${!cose.ok && cose.message}`);
}

test("old proofs leave memory as commit advances: pages, metadata and signature records", () => {
  const commit = primary.commitSeqno;
  const held = primary.heldProofs();
  const kept = keeper.heldProofs();
  assert.equal(held.archivedTo, commit - WINDOW);
  assert.equal(kept.archivedTo, 0);
  assert.ok(held.treePages < kept.treePages, `tree pages ${held.treePages} < ${kept.treePages}`);
  assert.equal(held.metaPages, 1);
  assert.equal(kept.metaPages, 2);
  assert.ok(held.signatures <= 2, `${held.signatures} signature records held`);
  assert.equal(kept.signatures, signatures.length);
  // The state carries on as before: status, views and new signatures over the same root.
  assert.equal(primary.txStatus(1, 5), "Committed");
  assert.equal(primary.viewOf(5), 1);
  assert.deepEqual(primary.receipt(1, commit - 5), keeper.receipt(1, commit - 5));
});

test("receipts of early, middle and recent transactions: rebuilt from the ledger, identical, verifiable", async () => {
  const archivedTo = primary.heldProofs().archivedTo;
  const picks = [1, 2, 49, signatures[0]!, 1023, 1024, 1025, 2048, 2100, 4000, archivedTo, archivedTo + 1];
  picks.push(primary.commitSeqno - 1);
  for (const seqno of picks) {
    const inMemory = primary.receipt(1, seqno);
    assert.equal(inMemory.status, seqno <= archivedTo ? "Archived" : "ok", `seqno ${seqno}`);
    checkReceipt(await primary.loadReceipt(1, seqno), seqno, keeper.receipt(1, seqno));
  }
  // A signature transaction's own receipt (covered by the next signature).
  const sigReceipt = await primary.loadReceipt(1, signatures[3]!);
  assert.equal(sigReceipt.status === "ok" && sigReceipt.json.is_signature_transaction, true);
  // The other answers are unchanged.
  assert.deepEqual(await primary.loadReceipt(2, 5), { status: "Invalid" });
  assert.deepEqual(await primary.loadReceipt(1, primary.lastSeqno + 1), { status: "Unknown" });
});

test("a ledger that disagrees with the tree is refused, a short one is Pending, none is a clear error", async () => {
  const seqno = 1_000;
  const state = primary;
  try {
    // Another transaction's write set digest at seqno 1,000: the path no longer folds to the signed root.
    state.archive = archiveOf((e) =>
      e.seqno === seqno ? { ...e, writeSetDigest: decodeEntry(frames[seqno]!).writeSetDigest } : e,
    );
    await assert.rejects(Promise.resolve(state.loadReceipt(1, seqno)), /signed Merkle root does not match/);
    // A neighbour in the same block of 1,024 leaves: its path folds over the altered leaf too.
    await assert.rejects(
      Promise.resolve(state.loadReceipt(1, seqno + 3)),
      /signed Merkle root does not match/,
    );
    // Commit evidence that the ledger secret does not give.
    state.archive = archiveOf((e) =>
      e.seqno === seqno ? { ...e, commitEvidenceDigest: new Uint8Array(32) } : e,
    );
    await assert.rejects(Promise.resolve(state.loadReceipt(1, seqno)), /commit evidence/);
    // Files that end before the covering signature (not written yet): Pending, retry later.
    state.archive = archiveOf((e) => (e.seqno > seqno ? undefined : e));
    assert.deepEqual(await state.loadReceipt(1, seqno), { status: "Pending" });
    state.archive = undefined;
    assert.throws(() => state.loadReceipt(1, seqno), LedgerStateError);
  } finally {
    state.archive = archiveOf();
  }
  checkReceipt(await state.loadReceipt(1, seqno), seqno, keeper.receipt(1, seqno));
});

test("a restarted node, and one started from a snapshot, rebuild the same receipts", async () => {
  const entries = frames.map((f) => decodeEntry(f));
  const restarted = LedgerState.restore({
    env: env(),
    keys,
    secrets: secrets(),
    sink: { append: () => true },
    entries,
    commitSeqno: primary.commitSeqno,
  });
  restarted.receiptWindow = WINDOW;
  restarted.archive = archiveOf();
  assert.equal(restarted.heldProofs().archivedTo, primary.commitSeqno - WINDOW);
  for (const seqno of [3, 1500, 3000, primary.commitSeqno - 1]) {
    checkReceipt(await restarted.loadReceipt(1, seqno), seqno, keeper.receipt(1, seqno));
  }

  // From a snapshot: its ledger files start just after it; older receipts are not this node's to give.
  const s = snapshot!.seqno;
  const fromSnapshot = LedgerState.restore({
    env: env(),
    keys,
    secrets: secrets(),
    sink: { append: () => true },
    entries: entries.filter((e) => e.seqno > s),
    snapshot: decodeSnapshot(snapshot!.bytes, secrets()),
    ledgerStart: s + 1,
    serviceCertPem,
    commitSeqno: primary.commitSeqno,
  });
  fromSnapshot.receiptWindow = WINDOW;
  fromSnapshot.archive = archiveOf();
  for (const seqno of [s + 1, s + 2, s + 600, 4000, primary.commitSeqno - 2]) {
    checkReceipt(await fromSnapshot.loadReceipt(1, seqno), seqno, keeper.receipt(1, seqno));
  }
  assert.equal((await fromSnapshot.loadReceipt(1, s)).status, "BeforeSnapshot");
  assert.equal((await fromSnapshot.loadReceipt(1, s - 1)).status, "BeforeSnapshot");
});

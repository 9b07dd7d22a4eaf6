/**
 * The checks a snapshot from elsewhere passes before a node starts from it (a node that joins or
 * catches up by snapshot, or restarts on a ledger that begins after one): its anchor's signature
 * entry must carry commit evidence made with this service's ledger secret, a node signature over
 * the Merkle root the anchor's frontier gives, and the service key's signature over that root; the
 * store must hold that very signature; and the signing node must be one the store trusts there.
 */
import { coseVerifySign1, equalBytes, MerkleTree } from "../crypto/index.ts";
import { Store } from "../kv/index.ts";
import { type DecodedEntry, decodeEntry } from "./entry.ts";
import { LedgerStateError } from "./errors.ts";
import { commitEvidence, commitEvidenceDigest } from "./evidence.ts";
import type { LedgerSecrets } from "./secrets.ts";
import { checkSignedRoot, readSignatureEntry } from "./signatures.ts";
import { SigningRules } from "./signers.ts";
import type { decodeSnapshot } from "./snapshot.ts";
import { fromUtf8, jsonBytes, SINGLETON_KEY, type SignatureRecord, scanMap, Tables } from "./tables.ts";

/** A snapshot file as decoded by the ledger module. */
export type DecodedSnapshot = ReturnType<typeof decodeSnapshot>;

/** A snapshot that passed `checkSnapshot`: what a fresh ledger state starts from. */
export interface CheckedSnapshot {
  seqno: number;
  store: Store;
  /** The Merkle tree of the entries before the snapshot's signature entry (from the frontier). */
  tree: MerkleTree;
  /** The snapshot's signature entry. */
  entry: DecodedEntry;
  signature: { record: SignatureRecord; cose: Uint8Array };
  /** Who may sign after the snapshot, seeded from its store. */
  signers: SigningRules;
}

export function checkSnapshot(
  decoded: DecodedSnapshot,
  secrets: LedgerSecrets,
  serviceCertPem: string | undefined,
): CheckedSnapshot {
  const { snapshot, anchor } = decoded;
  const seqno = snapshot.version;
  const entry = decodeEntry(anchor.signatureFrame);
  const tree = MerkleTree.fromFrontier(anchor.treeFrontier);
  const evidence = commitEvidence(secrets.get(entry.secretVersion), entry.view, seqno);
  if (!equalBytes(commitEvidenceDigest(evidence), entry.commitEvidenceDigest)) {
    throw new LedgerStateError(`snapshot at ${seqno}: commit evidence does not match the ledger secret`);
  }
  const signature = readSignatureEntry(entry);
  const root = tree.root(seqno - 1);
  checkSignedRoot(seqno, signature.record, root);
  if (!serviceCertPem || !coseVerifySign1(signature.cose, serviceCertPem, root)) {
    throw new LedgerStateError(
      `snapshot at ${seqno}: the service's signature over the Merkle root does not verify`,
    );
  }
  const store = Store.fromSnapshot(snapshot);
  const stored = store.read(Tables.signatures, SINGLETON_KEY);
  if (!stored || !equalBytes(stored, jsonBytes(signature.record))) {
    throw new LedgerStateError(
      `snapshot at ${seqno}: its store does not hold the signature it is anchored on`,
    );
  }
  // A signature entry writes no node tables, so the store there is the state just before it.
  const signers = new SigningRules();
  signers.seed(seqno, (table) => readTable(store, table));
  signers.check(seqno, entry.view, signature.record, undefined, true);
  return { seqno, store, tree, entry, signature, signers };
}

function readTable(store: Store, name: string): Array<[string, Uint8Array]> {
  const tx = store.begin();
  const entries = scanMap(tx, name);
  tx.abandon();
  return entries.map(([key, value]) => [fromUtf8(key), value]);
}

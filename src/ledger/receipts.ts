/**
 * Receipts: both forms (JSON and COSE) built from a transaction's metadata, its inclusion path and
 * the signature over the root that covers it.
 *
 * A node keeps in memory the proofs of its recent transactions only: the Merkle tree's lower
 * levels, the per-transaction metadata and the signature records of everything more than
 * `receiptWindow` transactions before the commit point are dropped (LedgerState compacts them as
 * commit advances). A receipt for such an older transaction is rebuilt from the ledger entries:
 * each entry's frame gives its leaf (write set digest, commit evidence digest, claims digest), the
 * first signature entry after it gives the signed root and both signatures, and the tree's upper
 * levels (kept: 1/512 of a hash per transaction) give the rest of the path. The leaves read are
 * those of the transaction's block of 2^MERKLE_KEPT_LEVEL leaves and those up to that signature, and the
 * rebuilt path must fold to the signed root, so a ledger file that disagrees with the tree is
 * refused rather than served.
 */
import {
  buildCoseReceipt,
  buildJsonReceipt,
  equalBytes,
  MERKLE_KEPT_LEVEL,
  type MerkleTree,
  type ProofStep,
  rootFromPath,
  toHex,
} from "../crypto/index.ts";
import { type DecodedEntry, EntryType } from "./entry.ts";
import { LedgerStateError } from "./errors.ts";
import { commitEvidence, commitEvidenceDigest, leafOf } from "./evidence.ts";
import type { ReceiptLookup } from "./outcomes.ts";
import type { LedgerSecrets } from "./secrets.ts";
import { checkSignedRoot, readSignatureEntry } from "./signatures.ts";
import type { SignatureRecord } from "./tables.ts";
import type { TxMeta } from "./tx-history.ts";

/** Transactions before the commit point whose receipts a node serves from memory, by default. */
export const DEFAULT_RECEIPT_WINDOW = 10_000;

/** Where older ledger entries are read back from: the node's chunk files (archive.ts). */
export interface LedgerArchive {
  /**
   * The entries from seqno `from` on, in order, as far as the files hold them (a torn or missing
   * tail ends the iteration early). The reader stops iterating once it has what it needs.
   */
  entriesFrom(from: number): AsyncIterable<DecodedEntry>;
}

/** A signature transaction's record (node signature) and COSE signature (service key). */
export interface SignedRoot {
  record: SignatureRecord;
  cose: Uint8Array;
}

/** Both receipt forms for transaction `seqno`, proven by `proof` up to the root `signature` signs. */
export function buildReceipt(
  secrets: LedgerSecrets,
  seqno: number,
  meta: TxMeta,
  proof: ProofStep[],
  signature: SignedRoot,
): ReceiptLookup {
  const evidence = commitEvidence(secrets.get(meta.secretVersion), meta.view, seqno);
  const json = buildJsonReceipt({
    nodeCertPem: signature.record.cert,
    nodeId: signature.record.node,
    signature: Buffer.from(signature.record.sig, "base64"),
    proof,
    leafComponents: {
      write_set_digest: toHex(meta.writeSetDigest),
      commit_evidence: evidence,
      claims_digest: toHex(meta.claimsDigest),
    },
  });
  if (meta.isSignature) json.is_signature_transaction = true;
  const cose = buildCoseReceipt({
    signedRoot: signature.cose,
    proof,
    writeSetDigest: meta.writeSetDigest,
    commitEvidence: evidence,
    claimsDigest: meta.claimsDigest,
  });
  return { status: "ok", json, cose };
}

/** The first value in an ascending list greater than `seqno` (binary search), or undefined. */
export function firstAfter(sorted: readonly number[], seqno: number): number | undefined {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! <= seqno) lo = mid + 1;
    else hi = mid;
  }
  return sorted[lo];
}

/**
 * The first seqno an archived receipt for `seqno` reads: the start of its leaf's block of
 * 2^MERKLE_KEPT_LEVEL leaves, or the first entry the node's files hold, if later.
 */
export function archiveReadFrom(seqno: number, firstOnDisk: number): number {
  const width = 2 ** MERKLE_KEPT_LEVEL;
  const blockStart = Math.floor((seqno - 1) / width) * width;
  return Math.max(blockStart + 1, firstOnDisk);
}

/**
 * Reads from `archive` the entries `from`.. through the first signature after `seqno` (at most up
 * to `last`, the commit point: committed entries are never rewritten).
 */
export async function readThroughSignature(
  archive: LedgerArchive,
  from: number,
  seqno: number,
  last: number,
): Promise<DecodedEntry[]> {
  const entries: DecodedEntry[] = [];
  for await (const entry of archive.entriesFrom(from)) {
    if (entry.seqno > last) break;
    entries.push(entry);
    if (entry.seqno > seqno && entry.type === EntryType.Signature) break;
  }
  return entries;
}

/**
 * Rebuilds the receipt of `view.seqno` from ledger entries: `entries` run from seqno `from`
 * (contiguous) through the first signature after `seqno`; fewer (that signature is not in the
 * files yet) give `Pending`. Everything read is checked before it is served: the commit evidence
 * against the ledger secret, the signature entry's node signature, and the rebuilt path against
 * the root that signature signs. A mismatch throws a LedgerStateError.
 */
export function receiptFromEntries(opts: {
  tree: MerkleTree;
  secrets: LedgerSecrets;
  view: number;
  seqno: number;
  from: number;
  entries: readonly DecodedEntry[];
}): ReceiptLookup {
  const { tree, secrets, view, seqno, from, entries } = opts;
  const leaves: Uint8Array[] = [];
  let target: DecodedEntry | undefined;
  let signatureEntry: DecodedEntry | undefined;
  for (const [i, entry] of entries.entries()) {
    if (entry.seqno !== from + i) {
      throw new LedgerStateError(
        `the ledger entries read for a receipt are not contiguous: expected seqno ${from + i}, found ${entry.seqno}`,
      );
    }
    if (entry.seqno > seqno && entry.type === EntryType.Signature) {
      signatureEntry = entry;
      break;
    }
    if (entry.seqno === seqno) target = entry;
    leaves.push(leafOf(entry.writeSetDigest, entry.commitEvidenceDigest, entry.claimsDigest));
  }
  if (!target) {
    // The files hold less than the node committed (a far-behind node still writing its tail).
    if (entries.length === 0 || (entries.at(-1)?.seqno ?? 0) < seqno) return { status: "Pending" };
    throw new LedgerStateError(`the ledger entries read for a receipt do not hold seqno ${seqno}`);
  }
  if (!signatureEntry) return { status: "Pending" };
  if (target.view !== view) {
    throw new LedgerStateError(`the ledger files hold seqno ${seqno} in view ${target.view}, not ${view}`);
  }
  const evidence = commitEvidence(secrets.get(target.secretVersion), target.view, seqno);
  if (!equalBytes(commitEvidenceDigest(evidence), target.commitEvidenceDigest)) {
    throw new LedgerStateError(
      `commit evidence of seqno ${seqno} in the ledger files does not match the ledger secret`,
    );
  }
  const signature = readSignatureEntry(signatureEntry);
  const size = signatureEntry.seqno - 1;
  const proof = tree.path(seqno - 1, size, { first: from - 1, hashes: leaves });
  const root = rootFromPath(leaves[seqno - from]!, proof);
  // The record's root must be the one the rebuilt path gives, and the node's signature over it good.
  checkSignedRoot(signatureEntry.seqno, signature.record, root);
  return buildReceipt(
    secrets,
    seqno,
    {
      view: target.view,
      secretVersion: target.secretVersion,
      writeSetDigest: target.writeSetDigest,
      claimsDigest: target.claimsDigest,
      isSignature: target.type === EntryType.Signature,
    },
    proof,
    signature,
  );
}

/**
 * The ledger: entry format, ledger secrets, commit evidence, chunk files, snapshots, and the
 * framework tables' names and codecs.
 */

export { ledgerDirArchive } from "./archive.ts";
export {
  type DecodedEntry,
  decodeEntry,
  decryptEntry,
  type Entry,
  EntryType,
  encodeEntry,
  frameWriteSetDigest,
} from "./entry.ts";
export { invariant, LedgerError, type LedgerErrorContext, LedgerInvariantError } from "./errors.ts";
export { commitEvidence, commitEvidenceDigest, leafOf } from "./evidence.ts";
export { DEFAULT_CHUNK_SIZE, LedgerFiles, type LedgerFilesOptions, type LedgerFilesStats } from "./files.ts";
export type { LedgerFileHandle, LedgerIo } from "./io.ts";
export { nodeIo } from "./io.ts";
export {
  type CommitOutcome,
  NotPrimaryError,
  type ReceiptInMemory,
  type ReceiptLookup,
  type TxStatus,
  ZERO_DIGEST,
} from "./outcomes.ts";
export { DEFAULT_PREALLOCATION } from "./preallocation.ts";
export { type LedgerRecord, readLedgerDir } from "./reader.ts";
export { DEFAULT_RECEIPT_WINDOW, type LedgerArchive } from "./receipts.ts";
export type { LedgerSecret } from "./secrets.ts";
export { LedgerSecrets } from "./secrets.ts";
export { checkSignedRoot, readSignatureEntry, SignatureCheckError } from "./signatures.ts";
export { type ReplicationSource, SigningRules } from "./signers.ts";
export {
  decodeSnapshot,
  encodeSnapshot,
  listSnapshots,
  type SnapshotAnchor,
  snapshotDigest,
  writeSnapshotFile,
} from "./snapshot.ts";
export {
  type EncodedSnapshot,
  encodeSnapshotFrom,
  SnapshotEncoder,
  type SnapshotSource,
} from "./snapshot-encoder.ts";
export {
  type DecodedSnapshot,
  type LedgerEnvironment,
  type LedgerSink,
  LedgerState,
  LedgerStateError,
  type PreparedSnapshot,
  type SigningKeys,
} from "./state.ts";
export {
  fromUtf8,
  jsonBytes,
  type NodeInfo,
  parseJsonBytes,
  readJson,
  type ServiceInfo,
  SINGLETON_KEY,
  type SignatureRecord,
  scanMap,
  Tables,
  utf8,
  writeJson,
} from "./tables.ts";

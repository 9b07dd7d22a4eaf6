import { toHex, verifyP384 } from "../crypto/index.ts";
import type { DecodedEntry } from "../ledger/index.ts";
import { parseJsonBytes, type SignatureRecord, Tables } from "../ledger/index.ts";

export class SignatureCheckError extends Error {
  constructor(
    readonly seqno: number,
    /** What is wrong, without the seqno. */
    readonly reason: string,
  ) {
    super(`seqno ${seqno}: ${reason}`);
  }
}

/** The signature record and COSE signature carried by a signature entry. */
export function readSignatureEntry(entry: DecodedEntry): { record: SignatureRecord; cose: Uint8Array } {
  const find = (name: string) => entry.publicWriteSet.find((m) => m.name === name)?.updates[0]?.value;
  const record = find(Tables.signatures);
  const cose = find(Tables.coseSignatures);
  if (!record || !cose) throw new SignatureCheckError(entry.seqno, "signature entry has no signature record");
  try {
    return { record: parseJsonBytes<SignatureRecord>(record), cose };
  } catch {
    throw new SignatureCheckError(entry.seqno, "signature record is not valid JSON");
  }
}

/** Checks that a signature record signs `root` (the Merkle root of everything before it). */
export function checkSignedRoot(seqno: number, record: SignatureRecord, root: Uint8Array): void {
  if (record.seqno !== seqno)
    throw new SignatureCheckError(seqno, `signature record claims seqno ${record.seqno}`);
  if (record.root !== toHex(root)) {
    throw new SignatureCheckError(seqno, "signed Merkle root does not match the transactions before it");
  }
  if (!verifyP384(record.cert, root, Buffer.from(record.sig, "base64"))) {
    throw new SignatureCheckError(seqno, "node signature over the Merkle root does not verify");
  }
}

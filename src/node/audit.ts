import { coseVerifySign1, MerkleTree, verifyIssuedBy } from "../crypto/index.ts";
import { EntryType, LedgerError, leafOf, readLedgerDir } from "../ledger/index.ts";
import { checkSignedRoot, readSignatureEntry, SignatureCheckError } from "./signatures.ts";

export interface AuditReport {
  ok: boolean;
  transactions: number;
  signatures: number;
  /** Seqno of the last entry covered by a verified signature. */
  verifiedThrough: number;
  /** Entries after the last signature: present but not yet covered by one. */
  unsignedTail: number;
  /**
   * View and seqno of the last verified signature. Of several copies of a service's ledger, the
   * one whose last signature has the highest view (then seqno) holds every committed
   * transaction: that is the one to recover from.
   */
  lastSignature: { view: number; seqno: number } | null;
  failure?: { seqno: number | null; file?: string; message: string };
}

/**
 * Checks a ledger directory as an auditor would, with only the service certificate: every
 * frame well formed and contiguous, every Merkle root recomputed, every signature verified with
 * a node certificate the service endorsed, every COSE root signature verified with the service key.
 */
export async function auditLedger(dir: string, serviceCertPem: string): Promise<AuditReport> {
  const tree = new MerkleTree();
  const report: AuditReport = {
    ok: true,
    transactions: 0,
    signatures: 0,
    verifiedThrough: 0,
    unsignedTail: 0,
    lastSignature: null,
  };
  let lastFile: string | undefined;
  try {
    for await (const { file, entry } of readLedgerDir(dir)) {
      lastFile = file;
      if (entry.seqno !== tree.size + 1) {
        return fail(report, entry.seqno, `expected seqno ${tree.size + 1}`, file);
      }
      if (entry.type === EntryType.Signature) {
        const { record, cose } = readSignatureEntry(entry);
        const root = tree.root(entry.seqno - 1);
        checkSignedRoot(entry.seqno, record, root);
        const endorsed = verifyIssuedBy(record.cert, serviceCertPem);
        if (!endorsed.ok) {
          return fail(
            report,
            entry.seqno,
            `signing node certificate is not endorsed by the service: ${endorsed.reason}`,
            file,
          );
        }
        if (!coseVerifySign1(cose, serviceCertPem, root)) {
          return fail(
            report,
            entry.seqno,
            "COSE signature over the Merkle root does not verify with the service key",
            file,
          );
        }
        report.signatures++;
        report.verifiedThrough = entry.seqno;
        report.lastSignature = { view: entry.view, seqno: entry.seqno };
      }
      tree.append(leafOf(entry.writeSetDigest, entry.commitEvidenceDigest, entry.claimsDigest));
      report.transactions++;
    }
  } catch (e) {
    if (e instanceof SignatureCheckError) return fail(report, e.seqno, e.message, lastFile);
    if (e instanceof LedgerError) return fail(report, null, e.message);
    throw e;
  }
  report.unsignedTail = report.transactions - report.verifiedThrough;
  return report;
}

function fail(report: AuditReport, seqno: number | null, message: string, file?: string): AuditReport {
  return { ...report, ok: false, failure: { seqno, message, ...(file ? { file } : {}) } };
}

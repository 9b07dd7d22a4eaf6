import { coseVerifySign1, equalBytes, MerkleTree, publicKeyDer, verifyIssuedBy } from "../crypto/index.ts";
import type { ServiceInfo } from "../ledger/index.ts";
import {
  checkSignedRoot,
  EntryType,
  LedgerError,
  leafOf,
  readLedgerDir,
  readSignatureEntry,
  SignatureCheckError,
  SigningRules,
} from "../ledger/index.ts";

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
 * frame well formed and contiguous, every Merkle root recomputed, and every signature
 * transaction checked for who made it (docs/security.md, "Who may sign the ledger"): a node
 * Trusted at that point, with its endorsed certificate, the only signer of its view, its node
 * signature over the root verifying, and the service's COSE signature over the same root
 * verifying with the service identity the ledger records at that point. The last signature's
 * service identity must be the certificate given (the same key: renewals keep it): its
 * signature covers the whole ledger before it, recovered services' earlier identities included.
 */
export async function auditLedger(dir: string, serviceCertPem: string): Promise<AuditReport> {
  const tree = new MerkleTree();
  const rules = new SigningRules();
  const report: AuditReport = {
    ok: true,
    transactions: 0,
    signatures: 0,
    verifiedThrough: 0,
    unsignedTail: 0,
    lastSignature: null,
  };
  let lastFile: string | undefined;
  let signingService: ServiceInfo | undefined;
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
        rules.check(entry.seqno, entry.view, record);
        const service = rules.serviceInfo();
        if (!service)
          return fail(report, entry.seqno, "no service identity is recorded before this signature", file);
        const endorsed = verifyIssuedBy(record.cert, service.cert);
        if (!endorsed.ok) {
          return fail(
            report,
            entry.seqno,
            `signing node certificate is not endorsed by the service: ${endorsed.reason}`,
            file,
          );
        }
        if (!coseVerifySign1(cose, service.cert, root)) {
          return fail(
            report,
            entry.seqno,
            "COSE signature over the Merkle root does not verify with the service key recorded at this point",
            file,
          );
        }
        rules.noteSignature(entry.seqno, entry.view, record.node);
        signingService = service;
        report.signatures++;
        report.verifiedThrough = entry.seqno;
        report.lastSignature = { view: entry.view, seqno: entry.seqno };
      }
      const before = rules.serviceInfo();
      rules.noteWrites(entry.seqno, entry.publicWriteSet);
      const problem = identityChangeProblem(before, rules.serviceInfo());
      if (problem) return fail(report, entry.seqno, problem, file);
      tree.append(leafOf(entry.writeSetDigest, entry.commitEvidenceDigest, entry.claimsDigest));
      report.transactions++;
    }
  } catch (e) {
    if (e instanceof SignatureCheckError) return fail(report, e.seqno, e.reason, lastFile);
    // The reader names where the ledger goes wrong; failing that, everything before was read and
    // checked, so the first bad seqno is the next one.
    if (e instanceof LedgerError)
      return fail(report, e.seqno ?? report.transactions + 1, e.message, e.file ?? lastFile);
    throw e;
  }
  if (signingService && !sameKey(signingService.cert, serviceCertPem)) {
    return fail(
      report,
      report.verifiedThrough,
      "the service identity that signed the last signature is not the service certificate given",
      lastFile,
    );
  }
  report.unsignedTail = report.transactions - report.verifiedThrough;
  return report;
}

/**
 * A service's key changes only when a recovered service takes over, and its first transaction
 * names the identity it recovered (renewals keep the key).
 */
function identityChangeProblem(
  before: ServiceInfo | undefined,
  after: ServiceInfo | undefined,
): string | undefined {
  if (!before || before === after) return undefined;
  if (!after) return "the service identity is removed";
  if (sameKey(before.cert, after.cert)) return undefined;
  const previous = after.previous_service_identity;
  if (previous && sameKey(previous, before.cert)) return undefined;
  return "the service identity changes without naming the previous one as a recovered service does";
}

function sameKey(certA: string, certB: string): boolean {
  try {
    return equalBytes(publicKeyDer(certA), publicKeyDer(certB));
  } catch {
    return false;
  }
}

function fail(report: AuditReport, seqno: number | null, message: string, file?: string): AuditReport {
  return { ...report, ok: false, failure: { seqno, message, ...(file ? { file } : {}) } };
}

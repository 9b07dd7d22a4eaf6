// A node's attestation as it travels (join requests, /node/attestations) and how a joiner's is
// judged against the join policy. Platform-neutral: each platform keeps its own allow-list, as in
// CCF, and a node joins if its own platform's list admits it.
import { publicKeyDer, sha256 } from "../crypto/index.ts";
import { SnpError } from "./snp/errors.ts";
import { checkSnpPolicy, type SnpJoinPolicy, snpCpuidHex } from "./snp/policy.ts";
import { parseSnpReport, SNP_REPORT_SIZE, type SnpReport } from "./snp/report.ts";
import { verifySnpReport } from "./snp/verify.ts";
import { type VirtualAttestation, verifyVirtualAttestation } from "./virtual.ts";

export type AttestationPlatform = "virtual" | "snp";

/** An SEV-SNP attestation as a node sends it: the raw report and the chain that endorses it. */
export interface SnpEvidence {
  format: "snp";
  /** The 1184-byte ATTESTATION_REPORT, base64. */
  report: string;
  /** PEM: the VCEK (or VLEK), the ASK (or ASVK) and the ARK. */
  endorsements: string;
}

export type NodeAttestation = VirtualAttestation | SnpEvidence;

/** The largest endorsement chain accepted (three certificates are about 7 KB). */
const MAX_ENDORSEMENTS = 64 * 1024;

/**
 * The REPORT_DATA that binds a node's key: SHA-256 of its public key (SubjectPublicKeyInfo DER),
 * followed by 32 zero bytes to fill the 64-byte field. The first half is also the node's id.
 */
export function keyReportData(nodePublicKeyPem: string): Uint8Array {
  const out = new Uint8Array(64);
  out.set(sha256(publicKeyDer(nodePublicKeyPem)));
  return out;
}

/** The join policy: the allowed virtual measurements and the SNP policy, read from governance. */
export interface JoinPolicy {
  virtualMeasurements: string[];
  snp: SnpJoinPolicy;
  /** SNP minimum-TCB rows that could not be read, by CPUID; a joiner on that CPU is refused. */
  snpTcbProblems?: Record<string, string>;
}

export interface AttestationCheckOptions {
  /** Milliseconds since the epoch, from the node's environment: certificate validity. */
  now: number;
  /** The checking node's own platform. A node on `snp` refuses virtual (insecure) attestations. */
  platform: AttestationPlatform;
  /**
   * ARK certificates to trust instead of AMD's bundled roots. Only in-process callers (tests)
   * can set this; no configuration reaches it.
   */
  trustedRoots?: string[];
}

/** What a client (and the ledger) sees of a node's attestation. */
export type AttestationView =
  | {
      format: "virtual";
      insecure: true;
      warning: string;
      measurement: string;
      report_data: string;
    }
  | {
      format: "snp";
      insecure: false;
      report: string;
      endorsements: string;
      measurement: string;
      report_data: string;
      host_data: string;
      reported_tcb: string;
      cpuid: string | null;
      product: string | null;
    };

export const VIRTUAL_WARNING =
  "virtual platform: no hardware vouches for this attestation and anyone can forge it; it proves nothing";

export type AttestationVerdict = { ok: true; view: AttestationView } | { ok: false; reason: string };

/** Strict base64 (no whitespace or URL alphabet), so a report cannot be smuggled in two spellings. */
function decodeBase64(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return undefined;
  return new Uint8Array(Buffer.from(text, "base64"));
}

/** Reads SNP evidence from outside; throws SnpError naming the field that is wrong. */
export function parseSnpEvidence(value: unknown): {
  report: SnpReport;
  bytes: Uint8Array;
  endorsements: string;
} {
  const a = value as Partial<SnpEvidence>;
  if (typeof a.report !== "string")
    throw new SnpError("bad-input", "attestation.report must be a base64 string");
  const bytes = decodeBase64(a.report);
  if (!bytes) throw new SnpError("bad-input", "attestation.report is not base64");
  if (bytes.length !== SNP_REPORT_SIZE) {
    throw new SnpError("bad-size", `attestation.report holds ${bytes.length} bytes, not ${SNP_REPORT_SIZE}`);
  }
  if (typeof a.endorsements !== "string" || a.endorsements.length === 0) {
    throw new SnpError("bad-input", "attestation.endorsements must be the PEM chain (VCEK, ASK, ARK)");
  }
  if (a.endorsements.length > MAX_ENDORSEMENTS) {
    throw new SnpError("bad-input", `attestation.endorsements is larger than ${MAX_ENDORSEMENTS} bytes`);
  }
  return { report: parseSnpReport(bytes), bytes, endorsements: a.endorsements };
}

/** The view of an attestation this node made or recorded (already checked, so decoding succeeds). */
export function attestationView(attestation: NodeAttestation): AttestationView {
  if (attestation.format === "virtual") {
    return {
      format: "virtual",
      insecure: true,
      warning: VIRTUAL_WARNING,
      measurement: attestation.measurement,
      report_data: attestation.report_data,
    };
  }
  const { report, bytes, endorsements } = parseSnpEvidence(attestation);
  return {
    format: "snp",
    insecure: false,
    report: Buffer.from(bytes).toString("base64"),
    endorsements,
    measurement: report.measurement,
    report_data: report.reportData,
    host_data: report.hostData,
    reported_tcb: report.reportedTcb.hex,
    cpuid: snpCpuidHex(report) ?? null,
    product: report.cpuidProduct ?? null,
  };
}

function checkSnp(
  attestation: unknown,
  nodePublicKeyPem: string,
  policy: JoinPolicy,
  options: AttestationCheckOptions,
): AttestationVerdict {
  let evidence: ReturnType<typeof parseSnpEvidence>;
  try {
    evidence = parseSnpEvidence(attestation);
  } catch (e) {
    if (e instanceof SnpError) return { ok: false, reason: e.message };
    throw e;
  }
  const verification = verifySnpReport(evidence.bytes, {
    chain: evidence.endorsements,
    now: options.now,
    expectedReportData: keyReportData(nodePublicKeyPem),
    ...(options.trustedRoots ? { trustedRoots: options.trustedRoots } : {}),
  });
  if (!verification.ok) {
    const failures = verification.checks
      .filter((c) => !c.ok)
      .map((c) =>
        c.name === "report-data"
          ? "report-data: the report does not bind the joining node's public key (REPORT_DATA must be SHA-256 of its SubjectPublicKeyInfo DER, then 32 zero bytes)"
          : `${c.name}: ${c.detail}`,
      );
    return { ok: false, reason: `the SNP attestation does not verify: ${failures.join("; ")}` };
  }
  const report = verification.report;
  const reasons: string[] = [];
  // As CCF: a migration agent could move the guest's memory to a machine no report describes.
  if (report.policy.migrateMaAllowed) {
    reasons.push("the guest policy allows a migration agent (POLICY bit 18), which Coco refuses");
  }
  const cpuid = snpCpuidHex(report);
  const problem = cpuid === undefined ? undefined : policy.snpTcbProblems?.[cpuid];
  if (problem) reasons.push(`the minimum TCB on record for CPUID ${cpuid} is unusable: ${problem}`);
  reasons.push(...checkSnpPolicy(report, policy.snp, verification.product));
  if (reasons.length > 0) {
    return { ok: false, reason: `the SNP join policy refuses this node: ${reasons.join("; ")}` };
  }
  return {
    ok: true,
    view: attestationView({
      format: "snp",
      report: Buffer.from(evidence.bytes).toString("base64"),
      endorsements: evidence.endorsements,
    }),
  };
}

/**
 * Judges a joiner's attestation: its format, the binding of its key in the report data, the
 * hardware's signature chain (SNP), and the join policy of its platform. Returns what to record,
 * or the reason for refusal. Never throws for bad input.
 */
export function checkNodeAttestation(
  attestation: unknown,
  nodePublicKeyPem: string,
  policy: JoinPolicy,
  options: AttestationCheckOptions,
): AttestationVerdict {
  if (typeof attestation !== "object" || attestation === null || Array.isArray(attestation)) {
    return { ok: false, reason: "attestation must be an object" };
  }
  const format = (attestation as { format?: unknown }).format;
  if (format === "snp") return checkSnp(attestation, nodePublicKeyPem, policy, options);
  if (format === "virtual") {
    if (options.platform === "snp") {
      return {
        ok: false,
        reason: "this service runs on SEV-SNP and refuses virtual (insecure) attestations",
      };
    }
    const verdict = verifyVirtualAttestation(attestation, nodePublicKeyPem, policy.virtualMeasurements);
    if (!verdict.ok) return verdict;
    return { ok: true, view: attestationView(attestation as VirtualAttestation) };
  }
  return { ok: false, reason: `unsupported attestation format ${JSON.stringify(format)} (virtual or snp)` };
}

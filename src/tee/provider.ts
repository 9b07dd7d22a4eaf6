// Produces this node's own attestation, binding its public key: the shell side of attestation
// (it reads the platform's report device and the endorsement sources).
import { type AttestationPlatform, keyReportData, type NodeAttestation } from "./node-attestation.ts";
import { acquireSnpReport, type SnpAcquired, type TsmFileSystem } from "./snp/acquire.ts";
import type { SnpKeySource } from "./snp/derived-key.ts";
import { fetchSnpEndorsements } from "./snp/endorsements.ts";
import { virtualAttestation } from "./virtual.ts";

/** Where an SNP node gets its report and the certificates that endorse it (node config). */
export interface SnpSettings {
  /** configfs-tsm's report directory, or an external tool (argv; `{report}`, `{report-data}`). */
  reportSource: { configfsTsm: string } | { command: string[] };
  endorsements: { file?: string; dir?: string; kdsUrl?: string; cacheDir?: string };
}

export interface AttestationSettings {
  platform: AttestationPlatform;
  snp?: SnpSettings;
}

export interface AttestationProvider {
  readonly platform: AttestationPlatform;
  /** A fresh attestation whose report data binds `nodePublicKeyPem` (see keyReportData). */
  attest(nodePublicKeyPem: string): Promise<NodeAttestation>;
}

/**
 * In-process only (tests): a stand-in for the configfs-tsm file system; and for sealing, one for
 * the program that asks the secure processor for a derived key, with (optionally) the guest's own
 * reports that sealing reads its TCB and guest SVN from (else it reads the configured source).
 */
export interface ProviderSeams {
  tsmFs?: TsmFileSystem;
  snpSealing?: { deriveKey: SnpKeySource; report?: (reportData: Uint8Array) => Promise<Uint8Array> };
}

/** A fresh report of this guest binding `reportData`, from the configured report source. */
export function acquireOwnSnpReport(
  snp: SnpSettings,
  reportData: Uint8Array,
  seams: ProviderSeams = {},
): Promise<SnpAcquired> {
  const source = snp.reportSource;
  return "command" in source
    ? acquireSnpReport({
        method: "command",
        reportData,
        command: { file: source.command[0]!, args: source.command.slice(1) },
      })
    : acquireSnpReport({
        method: "configfs-tsm",
        reportData,
        tsmPath: source.configfsTsm,
        ...(seams.tsmFs ? { fs: seams.tsmFs } : {}),
      });
}

export function attestationProvider(
  settings: AttestationSettings,
  seams: ProviderSeams = {},
): AttestationProvider {
  if (settings.platform === "virtual") {
    return { platform: "virtual", attest: async (pem) => virtualAttestation(pem) };
  }
  const snp = settings.snp;
  if (!snp) throw new Error("the snp platform needs its settings (report source and endorsements)");
  return {
    platform: "snp",
    async attest(pem) {
      const acquired = await acquireOwnSnpReport(snp, keyReportData(pem), seams);
      const e = snp.endorsements;
      const endorsements = await fetchSnpEndorsements(acquired.report, {
        ...(e.file ? { pemFile: e.file } : {}),
        ...(e.dir ? { pemDir: e.dir } : {}),
        ...(e.kdsUrl ? { kdsUrl: e.kdsUrl } : {}),
        ...(e.cacheDir ? { cacheDir: e.cacheDir } : {}),
      });
      return {
        format: "snp",
        report: Buffer.from(acquired.bytes).toString("base64"),
        endorsements: endorsements.chainPem,
      };
    },
  };
}

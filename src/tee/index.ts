export {
  type AttestationCheckOptions,
  type AttestationPlatform,
  type AttestationVerdict,
  type AttestationView,
  attestationView,
  checkNodeAttestation,
  type JoinPolicy,
  keyReportData,
  type NodeAttestation,
  parseSnpEvidence,
  type SnpEvidence,
  VIRTUAL_WARNING,
} from "./node-attestation.ts";
export {
  type AttestationProvider,
  type AttestationSettings,
  acquireOwnSnpReport,
  attestationProvider,
  type ProviderSeams,
  type SnpSettings,
} from "./provider.ts";
export {
  DEFAULT_SNP_SEALING_FIELDS,
  SealingError,
  type SealingKey,
  type SealingSettings,
  type SnpSealingKeys,
  type SnpSealRecord,
  snpKeyRequestOf,
  snpRecordProblem,
  snpSealingKeys,
} from "./sealing.ts";
export * from "./snp/index.ts";
export {
  codeMeasurement,
  type VirtualAttestation,
  verifyVirtualAttestation,
  virtualAttestation,
} from "./virtual.ts";

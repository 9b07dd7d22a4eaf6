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
  attestationProvider,
  type ProviderSeams,
  type SnpSettings,
} from "./provider.ts";
export * from "./snp/index.ts";
export {
  codeMeasurement,
  type VirtualAttestation,
  verifyVirtualAttestation,
  virtualAttestation,
} from "./virtual.ts";

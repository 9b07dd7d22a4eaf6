// Public face of the SEV-SNP platform: parse, verify, acquire, endorse, apply a join policy.
export {
  acquireSnpReport,
  CONFIGFS_TSM_REPORT,
  type SnpAcquired,
  type SnpAcquireOptions,
  type TsmFileSystem,
} from "./acquire.ts";
export { parseCertTable, type SnpCertTable } from "./certtable.ts";
export {
  checkSnpKeyRequest,
  encodeSnpKeyRequest,
  SNP_DERIVED_KEY_SIZE,
  SNP_GUEST_FIELDS,
  SNP_KEY_PLACEHOLDERS,
  SNP_KEY_REQUEST_SIZE,
  type SnpGuestField,
  type SnpKeyRequest,
  type SnpKeySource,
  type SnpRootKey,
  snpGuestFieldNames,
  snpKeyCommand,
  snpKeyCommandArgs,
  snpKeyCommandProblem,
} from "./derived-key.ts";
export {
  AMD_KDS,
  fetchSnpEndorsements,
  type SnpEndorsementOptions,
  type SnpEndorsements,
  vcekUrl,
} from "./endorsements.ts";
export { SnpError, type SnpErrorCode } from "./errors.ts";
export {
  cpuidFromHex,
  productFromCpuidHex,
  type SnpPolicyTables,
  type SnpTcbPolicy,
  snpPolicyFromTables,
  tcbFloorFromTable,
  tcbPolicyFromHex,
} from "./governance.ts";
export { checkSnpPolicy, type SnpJoinPolicy, type SnpTcbFloor, snpCpuidHex } from "./policy.ts";
export {
  parseSnpReport,
  productFromCpuid,
  SNP_REPORT_SIZE,
  type SnpFirmwareVersion,
  type SnpPlatformInfo,
  type SnpPolicy,
  type SnpProduct,
  type SnpReport,
  type SnpSigningKey,
  type SnpTcb,
  snpReportFields,
} from "./report.ts";
export { amdRootFor } from "./roots.ts";
export {
  type SnpCheck,
  type SnpCheckName,
  type SnpVerification,
  type SnpVerifyOptions,
  verifySnpReport,
} from "./verify.ts";

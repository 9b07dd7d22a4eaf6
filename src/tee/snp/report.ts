import { toHex } from "../../crypto/index.ts";
import { isAllZero, leUint, u64Hex } from "./bytes.ts";
import { SnpError } from "./errors.ts";

/**
 * The SEV-SNP ATTESTATION_REPORT (AMD SEV-SNP firmware ABI, "Attestation Report" table): 1184
 * bytes, little-endian, signed over bytes [0, 0x2A0). Versions 2 to 5 share one layout; later
 * versions only give meaning to bytes that earlier ones reserved (CPUID in v3, mitigation vectors
 * in v5), so each field below is read only from the version that defines it.
 */
export const SNP_REPORT_SIZE = 1184;
/** The signature covers the report up to here. */
export const SNP_SIGNED_LENGTH = 0x2a0;
export const SNP_MIN_VERSION = 2;
export const SNP_MAX_VERSION = 5;
/** SIGNATURE_ALGO 1: ECDSA P-384 with SHA-384, the only algorithm the ABI defines. */
export const SNP_SIG_ALGO_ECDSA_P384_SHA384 = 1;

export type SnpProduct = "Milan" | "Genoa" | "Turin";
export const SNP_PRODUCTS: readonly SnpProduct[] = ["Milan", "Genoa", "Turin"];

/**
 * A TCB_VERSION: the security patch levels of the firmware components. Milan and Genoa lay the 8
 * bytes out as [bootloader, tee, 0, 0, 0, 0, snp, microcode]; Turin (CPU family 0x1A) puts a new
 * FMC level first: [fmc, bootloader, tee, snp, 0, 0, 0, microcode].
 */
export interface SnpTcb {
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
  /** Turin and later only. */
  fmc?: number;
  /** The 8 bytes in report (little-endian) order, as hex. */
  hex: string;
  /** The same bytes read as a little-endian u64. */
  u64: string;
}

/** Guest POLICY (u64 at 0x008), set by the guest owner at launch and enforced by the firmware. */
export interface SnpPolicy {
  raw: string;
  abiMinor: number;
  abiMajor: number;
  smtAllowed: boolean;
  /** Bit 17 is reserved and must be set; a report with it clear did not come from real firmware. */
  reservedOne: boolean;
  migrateMaAllowed: boolean;
  debugAllowed: boolean;
  singleSocketRequired: boolean;
  cxlAllowed: boolean;
  memAes256Xts: boolean;
  raplDisabled: boolean;
  ciphertextHiding: boolean;
  pageSwapDisabled: boolean;
}

/** PLATFORM_INFO (u64 at 0x040): the state of the machine the guest runs on. */
export interface SnpPlatformInfo {
  raw: string;
  smtEnabled: boolean;
  tsmeEnabled: boolean;
  eccEnabled: boolean;
  raplDisabled: boolean;
  ciphertextHidingEnabled: boolean;
  aliasCheckComplete: boolean;
  tioEnabled: boolean;
}

/** SIGNING_KEY (bits 4:2 at 0x048): which key signed the report. */
export type SnpSigningKey = "vcek" | "vlek" | "none" | "reserved";

export interface SnpFirmwareVersion {
  major: number;
  minor: number;
  build: number;
}

export interface SnpReport {
  /** The report as given (a copy): the signature covers `bytes.subarray(0, 0x2A0)`. */
  bytes: Uint8Array;
  version: number;
  guestSvn: number;
  policy: SnpPolicy;
  familyId: string;
  imageId: string;
  vmpl: number;
  signatureAlgo: number;
  currentTcb: SnpTcb;
  platformInfo: SnpPlatformInfo;
  /** AUTHOR_KEY_EN: the author key digest is present. */
  authorKeyEn: boolean;
  /** MASK_CHIP_KEY: the firmware was told not to sign; the signature is zero. */
  maskChipKey: boolean;
  signingKey: SnpSigningKey;
  signingKeyRaw: number;
  reportData: string;
  measurement: string;
  hostData: string;
  idKeyDigest: string;
  authorKeyDigest: string;
  reportId: string;
  reportIdMa: string;
  reportedTcb: SnpTcb;
  /** v3 and later: the CPU the report was made on. */
  cpuid?: { family: number; model: number; stepping: number };
  /** The product the CPUID names (v3 and later, known family and model only). */
  cpuidProduct?: SnpProduct;
  /** 64 bytes; all zero when the platform masks it (MASK_CHIP_ID). */
  chipId: string;
  chipIdMasked: boolean;
  committedTcb: SnpTcb;
  currentVersion: SnpFirmwareVersion;
  committedVersion: SnpFirmwareVersion;
  launchTcb: SnpTcb;
  /** v5 and later. */
  launchMitVector?: string;
  currentMitVector?: string;
  /** R and S as 48-byte big-endian hex (the report stores each little-endian in 72 bytes). */
  signature: { r: string; s: string };
}

/** The product a CPUID family/model names (model ranges as AMD's KDS groups them). */
export function productFromCpuid(family: number, model: number): SnpProduct | undefined {
  if (family === 0x19) {
    if (model <= 0x0f) return "Milan";
    if ((model >= 0x10 && model <= 0x1f) || (model >= 0xa0 && model <= 0xaf)) return "Genoa";
  }
  if (family === 0x1a && model <= 0x11) return "Turin";
  return undefined;
}

function bit(value: bigint, n: number): boolean {
  return ((value >> BigInt(n)) & 1n) === 1n;
}

/** Decodes a TCB_VERSION with the layout of its CPU generation. */
export function decodeTcb(raw: Uint8Array, turinLayout: boolean): SnpTcb {
  const b = (i: number) => raw[i]!;
  const common = { hex: toHex(raw), u64: u64Hex(leUint(raw)) };
  return turinLayout
    ? { fmc: b(0), bootloader: b(1), tee: b(2), snp: b(3), microcode: b(7), ...common }
    : { bootloader: b(0), tee: b(1), snp: b(6), microcode: b(7), ...common };
}

function decodePolicy(value: bigint): SnpPolicy {
  return {
    raw: u64Hex(value),
    abiMinor: Number(value & 0xffn),
    abiMajor: Number((value >> 8n) & 0xffn),
    smtAllowed: bit(value, 16),
    reservedOne: bit(value, 17),
    migrateMaAllowed: bit(value, 18),
    debugAllowed: bit(value, 19),
    singleSocketRequired: bit(value, 20),
    cxlAllowed: bit(value, 21),
    memAes256Xts: bit(value, 22),
    raplDisabled: bit(value, 23),
    ciphertextHiding: bit(value, 24),
    pageSwapDisabled: bit(value, 25),
  };
}

function decodePlatformInfo(value: bigint): SnpPlatformInfo {
  return {
    raw: u64Hex(value),
    smtEnabled: bit(value, 0),
    tsmeEnabled: bit(value, 1),
    eccEnabled: bit(value, 2),
    raplDisabled: bit(value, 3),
    ciphertextHidingEnabled: bit(value, 4),
    aliasCheckComplete: bit(value, 5),
    tioEnabled: bit(value, 7),
  };
}

function signingKeyName(value: number): SnpSigningKey {
  if (value === 0) return "vcek";
  if (value === 1) return "vlek";
  if (value === 7) return "none";
  return "reserved";
}

/** Reverses a little-endian 72-byte signature component into 48 big-endian bytes. */
function componentHex(le: Uint8Array): string {
  return toHex(Uint8Array.from(le.subarray(0, 48)).reverse());
}

/**
 * Decodes an ATTESTATION_REPORT. Throws SnpError for a wrong size, a version outside 2..5, or a
 * signature algorithm other than ECDSA P-384/SHA-384. Decoding checks no signature.
 */
export function parseSnpReport(input: Uint8Array): SnpReport {
  if (!(input instanceof Uint8Array)) throw new SnpError("bad-input", "an SNP report must be bytes");
  if (input.length !== SNP_REPORT_SIZE) {
    throw new SnpError(
      "bad-size",
      `an SNP attestation report is ${SNP_REPORT_SIZE} bytes; this one is ${input.length}`,
    );
  }
  const bytes = Uint8Array.from(input);
  const view = new DataView(bytes.buffer);
  const u32 = (at: number) => view.getUint32(at, true);
  const u64 = (at: number) => view.getBigUint64(at, true);
  const hex = (at: number, length: number) => toHex(bytes.subarray(at, at + length));

  const version = u32(0x000);
  if (version < SNP_MIN_VERSION || version > SNP_MAX_VERSION) {
    throw new SnpError(
      "unsupported-version",
      `SNP report version ${version} at offset 0x000 is not supported (${SNP_MIN_VERSION} to ${SNP_MAX_VERSION} are)`,
    );
  }
  const signatureAlgo = u32(0x034);
  if (signatureAlgo !== SNP_SIG_ALGO_ECDSA_P384_SHA384) {
    throw new SnpError(
      "unsupported-signature-algorithm",
      `SNP report SIGNATURE_ALGO ${signatureAlgo} at offset 0x034 is not supported (1 = ECDSA P-384 with SHA-384 is)`,
    );
  }

  const cpuid =
    version >= 3 ? { family: bytes[0x188]!, model: bytes[0x189]!, stepping: bytes[0x18a]! } : undefined;
  // The TCB layout follows the CPU generation. v2 reports carry no CPUID; only Milan and Genoa
  // firmware produce them, so they use the original layout.
  const turin = cpuid !== undefined && cpuid.family >= 0x1a;
  const tcb = (at: number) => decodeTcb(bytes.subarray(at, at + 8), turin);
  const keyInfo = u32(0x048);
  const signingKeyRaw = (keyInfo >> 2) & 0x7;
  const chipId = bytes.subarray(0x1a0, 0x1e0);
  const version16 = (at: number): SnpFirmwareVersion => ({
    build: bytes[at]!,
    minor: bytes[at + 1]!,
    major: bytes[at + 2]!,
  });

  const report: SnpReport = {
    bytes,
    version,
    guestSvn: u32(0x004),
    policy: decodePolicy(u64(0x008)),
    familyId: hex(0x010, 16),
    imageId: hex(0x020, 16),
    vmpl: u32(0x030),
    signatureAlgo,
    currentTcb: tcb(0x038),
    platformInfo: decodePlatformInfo(u64(0x040)),
    authorKeyEn: (keyInfo & 1) === 1,
    maskChipKey: (keyInfo & 2) === 2,
    signingKey: signingKeyName(signingKeyRaw),
    signingKeyRaw,
    reportData: hex(0x050, 64),
    measurement: hex(0x090, 48),
    hostData: hex(0x0c0, 32),
    idKeyDigest: hex(0x0e0, 48),
    authorKeyDigest: hex(0x110, 48),
    reportId: hex(0x140, 32),
    reportIdMa: hex(0x160, 32),
    reportedTcb: tcb(0x180),
    chipId: toHex(chipId),
    chipIdMasked: isAllZero(chipId),
    committedTcb: tcb(0x1e0),
    currentVersion: version16(0x1e8),
    committedVersion: version16(0x1ec),
    launchTcb: tcb(0x1f0),
    signature: {
      r: componentHex(bytes.subarray(0x2a0, 0x2a0 + 72)),
      s: componentHex(bytes.subarray(0x2e8, 0x2e8 + 72)),
    },
  };
  if (cpuid) {
    report.cpuid = cpuid;
    const product = productFromCpuid(cpuid.family, cpuid.model);
    if (product) report.cpuidProduct = product;
  }
  if (version >= 5) {
    report.launchMitVector = u64Hex(u64(0x1f8));
    report.currentMitVector = u64Hex(u64(0x200));
  }
  return report;
}

/** The report's fields without its raw bytes: what the CLI prints and JSON carries. */
export function snpReportFields(report: SnpReport): Omit<SnpReport, "bytes"> {
  const { bytes: _bytes, ...fields } = report;
  return fields;
}

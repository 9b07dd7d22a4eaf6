// The SNP join policy as CCF's governance tables hold it, decoded into an SnpJoinPolicy.
//
// public:ccf.gov.nodes.snp.measurements  key: measurement hex      value: "AllowedToJoin"
// public:ccf.gov.nodes.snp.host_data     key: host data hex        value: the security policy text ("" if none)
// public:ccf.gov.nodes.snp.tcb_versions  key: CPUID hex (8 digits) value: a minimum TCB, either
//   {boot_loader, tee, snp, microcode} (set_snp_minimum_tcb_version) or CCF's TCB policy
//   {hexstring, microcode, snp, tee, boot_loader, fmc?} (set_snp_minimum_tcb_version_hex).
import { SnpError } from "./errors.ts";
import type { SnpJoinPolicy, SnpTcbFloor } from "./policy.ts";
import { productFromCpuid, type SnpProduct } from "./report.ts";

/** Family and model from a CPUID leaf 1 EAX value written as 8 hex digits (e.g. "00a00f11"). */
export function cpuidFromHex(cpuid: string): { family: number; model: number; stepping: number } {
  if (!/^[0-9a-fA-F]{8}$/.test(cpuid)) {
    throw new SnpError("bad-input", `CPUID ${JSON.stringify(cpuid)} must be 8 hex digits (leaf 1 EAX)`);
  }
  const eax = Number.parseInt(cpuid, 16);
  const baseFamily = (eax >> 8) & 0xf;
  const family = baseFamily === 0xf ? baseFamily + ((eax >> 20) & 0xff) : baseFamily;
  const model = (((eax >> 16) & 0xf) << 4) | ((eax >> 4) & 0xf);
  return { family, model, stepping: eax & 0xf };
}

/** The product a CPUID hex names, or undefined for a CPU Coco does not know. */
export function productFromCpuidHex(cpuid: string): SnpProduct | undefined {
  const { family, model } = cpuidFromHex(cpuid);
  return productFromCpuid(family, model);
}

/** A minimum TCB in CCF's policy form: what `ccf.tcbHexToPolicy` gives and the table stores. */
export interface SnpTcbPolicy {
  hexstring?: string;
  microcode?: number;
  snp?: number;
  tee?: number;
  boot_loader?: number;
  fmc?: number;
}

/**
 * Decodes a TCB written as CCF writes it in proposals: the 64-bit TCB_VERSION as 16 hex digits,
 * most significant byte first (so `db18000000000004` is microcode 0xdb, snp 0x18, bootloader 4 on
 * Milan). The byte layout follows the CPU generation the CPUID names, as in the report.
 */
export function tcbPolicyFromHex(cpuid: string, hex: string): SnpTcbPolicy {
  const product = productFromCpuidHex(cpuid);
  if (!product) throw new SnpError("unknown-product", `CPUID ${cpuid} names no SEV-SNP product Coco knows`);
  if (!/^[0-9a-fA-F]{16}$/.test(hex)) {
    throw new SnpError(
      "bad-input",
      `a TCB version must be 16 hex digits (8 bytes), not ${JSON.stringify(hex)}`,
    );
  }
  // Most significant byte first is the report's little-endian bytes reversed.
  const le = Buffer.from(hex, "hex").reverse();
  const b = (i: number) => le[i]!;
  const hexstring = hex.toLowerCase();
  return product === "Turin"
    ? { hexstring, microcode: b(7), snp: b(3), tee: b(2), boot_loader: b(1), fmc: b(0) }
    : { hexstring, microcode: b(7), snp: b(6), tee: b(1), boot_loader: b(0) };
}

function component(value: unknown, name: string, where: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > 255) {
    throw new SnpError("bad-input", `${where}: ${name} must be an integer from 0 to 255`);
  }
  return value as number;
}

/**
 * A minimum TCB from one `nodes.snp.tcb_versions` value. Components the value names are
 * compared; a component it leaves out is not constrained (as in CCF's TCB policy), except that a
 * value with no component at all, and no hexstring to derive them from, is refused as malformed.
 */
export function tcbFloorFromTable(cpuid: string, value: unknown): SnpTcbFloor {
  const where = `nodes.snp.tcb_versions[${cpuid}]`;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new SnpError("bad-input", `${where} must be a JSON object`);
  }
  const v = value as Record<string, unknown>;
  let fields: Record<string, unknown> = v;
  const named = ["boot_loader", "tee", "snp", "microcode", "fmc"].filter((k) => v[k] !== undefined);
  if (named.length === 0) {
    if (typeof v.hexstring !== "string") {
      throw new SnpError("bad-input", `${where} names no TCB component and no hexstring`);
    }
    fields = { ...tcbPolicyFromHex(cpuid, v.hexstring) };
  }
  const floor: SnpTcbFloor = {
    bootloader: component(fields.boot_loader, "boot_loader", where) ?? 0,
    tee: component(fields.tee, "tee", where) ?? 0,
    snp: component(fields.snp, "snp", where) ?? 0,
    microcode: component(fields.microcode, "microcode", where) ?? 0,
  };
  const fmc = component(fields.fmc, "fmc", where);
  if (fmc !== undefined) floor.fmc = fmc;
  return floor;
}

/** The raw rows of the three SNP policy tables (keys as text, values as bytes). */
export interface SnpPolicyTables {
  measurements: Array<[string, Uint8Array]>;
  hostData: Array<[string, Uint8Array]>;
  tcbVersions: Array<[string, Uint8Array]>;
}

/**
 * The join policy the tables describe. Every table constrains: an empty one admits nobody, as in
 * CCF (a node joins only if its measurement, its host data and a minimum TCB for its CPU are all
 * on record). Rows that cannot be read are returned in `problems`, keyed by CPUID, so a joiner on
 * that CPU is refused with the reason instead of being judged by a guess.
 */
export function snpPolicyFromTables(tables: SnpPolicyTables): {
  policy: SnpJoinPolicy & Required<Pick<SnpJoinPolicy, "measurements" | "hostData" | "minimumTcb">>;
  problems: Record<string, string>;
} {
  const minimumTcb: Record<string, SnpTcbFloor> = {};
  const problems: Record<string, string> = {};
  for (const [cpuid, raw] of tables.tcbVersions) {
    const key = cpuid.toLowerCase();
    try {
      minimumTcb[key] = tcbFloorFromTable(key, JSON.parse(Buffer.from(raw).toString("utf8")));
    } catch (e) {
      problems[key] =
        e instanceof SyntaxError ? `nodes.snp.tcb_versions[${key}] is not JSON` : (e as Error).message;
    }
  }
  return {
    policy: {
      measurements: tables.measurements.map(([m]) => m.toLowerCase()),
      hostData: tables.hostData.map(([h]) => h.toLowerCase()),
      minimumTcb,
      debugAllowed: false,
    },
    problems,
  };
}

import { normaliseHex } from "./bytes.ts";
import type { SnpProduct, SnpReport, SnpTcb } from "./report.ts";

/** The lowest acceptable TCB for one CPU: each component must be at least this. */
export interface SnpTcbFloor {
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
  /** Turin and later; a floor with `fmc` refuses reports that carry none. */
  fmc?: number;
}

/**
 * A join policy, as the governance tables hold it. A field left out is not constrained; an empty
 * list allows nothing.
 */
export interface SnpJoinPolicy {
  /** Allowed launch measurements (48-byte hex). */
  measurements?: string[];
  /** Allowed HOST_DATA values (32-byte hex). */
  hostData?: string[];
  /**
   * Minimum TCB per CPU, keyed by CPUID (leaf 1 EAX as 8 hex digits, e.g. "00a00f11" for Milan
   * B1, as CCF's nodes.snp.tcb_versions table does) or by product name ("Milan").
   */
  minimumTcb?: Record<string, SnpTcbFloor>;
  /** Whether a guest whose policy allows debugging may join. Default false. */
  debugAllowed?: boolean;
}

/**
 * The CPUID leaf 1 EAX value the report's family, model and stepping encode, as 8 hex digits.
 * Families above 0xF are split into base family 0xF plus an extended family.
 */
export function snpCpuidHex(report: SnpReport): string | undefined {
  if (!report.cpuid) return undefined;
  const { family, model, stepping } = report.cpuid;
  const baseFamily = Math.min(family, 0xf);
  const extFamily = family - baseFamily;
  const eax =
    (extFamily << 20) | ((model >> 4) << 16) | (baseFamily << 8) | ((model & 0xf) << 4) | (stepping & 0xf);
  return (eax >>> 0).toString(16).padStart(8, "0");
}

function tcbShortfall(tcb: SnpTcb, floor: SnpTcbFloor): string[] {
  const out: string[] = [];
  for (const key of ["bootloader", "tee", "snp", "microcode"] as const) {
    if (tcb[key] < floor[key]) out.push(`${key} ${tcb[key]} < ${floor[key]}`);
  }
  if (floor.fmc !== undefined && (tcb.fmc ?? -1) < floor.fmc)
    out.push(`fmc ${tcb.fmc ?? "absent"} < ${floor.fmc}`);
  return out;
}

/**
 * Applies a join policy to a report whose signature and chain were already verified. Returns the
 * reasons it is refused; an empty list means the policy admits it. `product` (from the verified
 * chain) lets product-keyed TCB floors apply to v2 reports, which carry no CPUID.
 */
export function checkSnpPolicy(report: SnpReport, policy: SnpJoinPolicy, product?: SnpProduct): string[] {
  const reasons: string[] = [];
  if (policy.measurements !== undefined) {
    const allowed = policy.measurements.map((m) => normaliseHex(m, 48) ?? m);
    if (!allowed.includes(report.measurement)) {
      reasons.push(
        `measurement ${report.measurement} is not among the ${allowed.length} allowed SNP measurements`,
      );
    }
  }
  if (policy.hostData !== undefined) {
    const allowed = policy.hostData.map((h) => normaliseHex(h, 32) ?? h);
    if (!allowed.includes(report.hostData)) {
      reasons.push(`host data ${report.hostData} is not among the ${allowed.length} allowed values`);
    }
  }
  if (report.policy.debugAllowed && policy.debugAllowed !== true) {
    reasons.push("the guest policy allows debugging (POLICY bit 19), which this join policy refuses");
  }
  if (policy.minimumTcb !== undefined) {
    const cpuid = snpCpuidHex(report);
    const byCpuid = cpuid === undefined ? undefined : policy.minimumTcb[cpuid];
    const name = report.cpuidProduct ?? product;
    const byName = name === undefined ? undefined : policy.minimumTcb[name];
    const floor = byCpuid ?? byName;
    const cpu = cpuid ? `CPUID ${cpuid}` : `product ${name ?? "unknown"}`;
    if (!floor) reasons.push(`no minimum TCB is set for ${cpu}`);
    else {
      const short = tcbShortfall(report.reportedTcb, floor);
      if (short.length > 0) reasons.push(`REPORTED_TCB is below the minimum for ${cpu}: ${short.join(", ")}`);
    }
  }
  return reasons;
}

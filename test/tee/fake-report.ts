// Builds SEV-SNP reports signed by a key of the test's own (a fake VCEK). Real reports cannot
// carry a key made in a test, so the acceptance paths of joining are exercised with these.
import { createPrivateKey, sign } from "node:crypto";

export const REPORT_SIZE = 1184;
/** Milan's TCB in report order: bootloader 4, tee 0, snp 24, microcode 219 (as the vectors). */
export const MILAN_TCB = [4, 0, 0, 0, 0, 0, 24, 219];
/** CPUID family 0x19 model 0x01 stepping 1: "00a00f11". */
export const MILAN_CPUID = [0x19, 0x01, 0x01];
export const CHIP_ID = Uint8Array.from({ length: 64 }, (_, i) => i + 1);
/** POLICY with the reserved bit 17 and SMT allowed, as real guests have it. */
export const GUEST_POLICY = 0x30000n;
export const DEBUG_BIT = 1n << 19n;
export const MIGRATE_MA_BIT = 1n << 18n;

export interface FakeReportFields {
  reportData: Uint8Array;
  measurement: string;
  hostData: string;
  policy?: bigint;
  tcb?: number[];
}

/** A v3 Milan report with these fields, signed (ECDSA P-384/SHA-384) by `vcekKeyPem`. */
export function fakeReport(vcekKeyPem: string, fields: FakeReportFields): Uint8Array {
  const bytes = new Uint8Array(REPORT_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, 3, true);
  view.setBigUint64(0x008, fields.policy ?? GUEST_POLICY, true);
  view.setUint32(0x034, 1, true);
  const tcb = fields.tcb ?? MILAN_TCB;
  for (const at of [0x038, 0x180, 0x1e0, 0x1f0]) bytes.set(tcb, at);
  bytes.set(fields.reportData, 0x050);
  bytes.set(Buffer.from(fields.measurement, "hex"), 0x090);
  bytes.set(Buffer.from(fields.hostData, "hex"), 0x0c0);
  bytes.set(MILAN_CPUID, 0x188);
  bytes.set(CHIP_ID, 0x1a0);
  const key = createPrivateKey(vcekKeyPem);
  const sig = sign("sha384", bytes.subarray(0, 0x2a0), { key, dsaEncoding: "ieee-p1363" });
  // The report stores R and S little-endian, each in a 72-byte field.
  bytes.set(Uint8Array.from(sig.subarray(0, 48)).reverse(), 0x2a0);
  bytes.set(Uint8Array.from(sig.subarray(48)).reverse(), 0x2e8);
  return bytes;
}

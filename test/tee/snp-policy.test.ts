import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  checkSnpPolicy,
  parseSnpReport,
  SNP_REPORT_SIZE,
  type SnpJoinPolicy,
  snpCpuidHex,
} from "../../src/tee/index.ts";

const MEASUREMENT = "ab".repeat(48);
const HOST_DATA = "cd".repeat(32);

/** A Genoa (or Turin / v2) report with the given reported TCB and policy. */
function report(opts: { tcb?: number[]; cpuid?: number[]; version?: number; policy?: bigint } = {}) {
  const bytes = new Uint8Array(SNP_REPORT_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, opts.version ?? 3, true);
  view.setBigUint64(0x008, opts.policy ?? 0x30000n, true);
  view.setUint32(0x034, 1, true);
  bytes.set(Buffer.from(MEASUREMENT, "hex"), 0x90);
  bytes.set(Buffer.from(HOST_DATA, "hex"), 0xc0);
  bytes.set(opts.tcb ?? [10, 0, 0, 0, 0, 0, 23, 84], 0x180);
  bytes.set(opts.cpuid ?? [0x19, 0x11, 0x01], 0x188);
  return parseSnpReport(bytes);
}

const FLOOR = { bootloader: 10, tee: 0, snp: 23, microcode: 84 };

test("CPUID keys are the leaf-1 EAX values CCF's tcb_versions table uses", () => {
  assert.equal(snpCpuidHex(report({ cpuid: [0x19, 0x01, 0x01] })), "00a00f11"); // Milan B1
  assert.equal(snpCpuidHex(report({ cpuid: [0x19, 0x11, 0x01] })), "00a10f11"); // Genoa B1
  assert.equal(snpCpuidHex(report({ cpuid: [0x1a, 0x02, 0x00] })), "00b00f20"); // Turin
  assert.equal(snpCpuidHex(report({ version: 2 })), undefined);
});

test("a report meeting every rule is admitted", () => {
  const policy: SnpJoinPolicy = {
    measurements: [MEASUREMENT.toUpperCase()],
    hostData: [HOST_DATA],
    minimumTcb: { "00a10f11": FLOOR },
  };
  assert.deepEqual(checkSnpPolicy(report(), policy), []);
  assert.deepEqual(checkSnpPolicy(report(), {}), [], "an empty policy constrains nothing");
});

test("measurement and host data must be listed; an empty list allows nothing", () => {
  const reasons = checkSnpPolicy(report(), { measurements: [], hostData: ["00".repeat(32)] });
  assert.equal(reasons.length, 2);
  assert.match(reasons[0]!, /measurement abab.* is not among the 0 allowed/);
  assert.match(reasons[1]!, /host data cdcd.* is not among the 1 allowed/);
});

test("debug-enabled guests are refused unless the policy allows debugging", () => {
  const debug = report({ policy: 0x30000n | (1n << 19n) });
  assert.match(checkSnpPolicy(debug, {})[0]!, /allows debugging/);
  assert.deepEqual(checkSnpPolicy(debug, { debugAllowed: true }), []);
  assert.deepEqual(checkSnpPolicy(report(), { debugAllowed: false }), []);
});

test("minimum TCB: each component is compared, by CPUID or by product name", () => {
  const low = report({ tcb: [10, 0, 0, 0, 0, 0, 22, 90] });
  const byCpuid = checkSnpPolicy(low, { minimumTcb: { "00a10f11": FLOOR } });
  assert.equal(byCpuid.length, 1);
  assert.match(byCpuid[0]!, /below the minimum for CPUID 00a10f11: snp 22 < 23/);
  assert.equal(checkSnpPolicy(low, { minimumTcb: { Genoa: FLOOR } }).length, 1);
  assert.match(
    checkSnpPolicy(report(), { minimumTcb: { "00a00f11": FLOOR } })[0]!,
    /no minimum TCB is set for CPUID 00a10f11/,
  );
});

test("v2 reports use a product-keyed floor when the verified chain names the product", () => {
  const v2 = report({ version: 2, tcb: [3, 0, 0, 0, 0, 0, 8, 115] });
  const floor = { Milan: { bootloader: 3, tee: 0, snp: 8, microcode: 115 } };
  assert.deepEqual(checkSnpPolicy(v2, { minimumTcb: floor }, "Milan"), []);
  assert.match(checkSnpPolicy(v2, { minimumTcb: floor })[0]!, /no minimum TCB is set for product unknown/);
});

test("Turin floors may require an FMC level", () => {
  const turin = report({ cpuid: [0x1a, 0x02, 0x00], tcb: [2, 5, 1, 9, 0, 0, 0, 77] });
  const floor = { bootloader: 5, tee: 1, snp: 9, microcode: 77, fmc: 3 };
  assert.match(checkSnpPolicy(turin, { minimumTcb: { Turin: floor } })[0]!, /fmc 2 < 3/);
  assert.deepEqual(checkSnpPolicy(turin, { minimumTcb: { Turin: { ...floor, fmc: 2 } } }), []);
  // A floor naming FMC refuses a Genoa report, which has none.
  assert.match(
    checkSnpPolicy(report(), { minimumTcb: { Genoa: { ...FLOOR, fmc: 0 } } })[0]!,
    /fmc absent < 0/,
  );
});

test("property: the TCB floor admits exactly the reports at or above it in every component", () => {
  const byte = fc.integer({ min: 0, max: 255 });
  fc.assert(
    fc.property(
      fc.tuple(byte, byte, byte, byte),
      fc.tuple(byte, byte, byte, byte),
      ([bl, tee, snp, uc], [fbl, ftee, fsnp, fuc]) => {
        const r = report({ tcb: [bl, tee, 0, 0, 0, 0, snp, uc] });
        const reasons = checkSnpPolicy(r, {
          minimumTcb: { Genoa: { bootloader: fbl, tee: ftee, snp: fsnp, microcode: fuc } },
        });
        const admitted = bl >= fbl && tee >= ftee && snp >= fsnp && uc >= fuc;
        assert.equal(reasons.length === 0, admitted);
      },
    ),
    { numRuns: 200 },
  );
});

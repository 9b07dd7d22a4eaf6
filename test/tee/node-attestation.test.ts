// Judging a joiner's attestation: key binding, the SNP chain, and the join policy read from CCF's
// governance table formats. Reports made here are signed by a fake AMD trusted in-process only.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { generateP384KeyPair, nodeIdOf, publicKeyDer } from "../../src/crypto/index.ts";
import {
  type AttestationCheckOptions,
  checkNodeAttestation,
  checkSnpPolicy,
  codeMeasurement,
  type JoinPolicy,
  keyReportData,
  parseSnpEvidence,
  parseSnpReport,
  snpPolicyFromTables,
  tcbFloorFromTable,
  tcbPolicyFromHex,
  virtualAttestation,
} from "../../src/tee/index.ts";
import { makeFakeAmd } from "./fake-amd.ts";
import { DEBUG_BIT, fakeReport, GUEST_POLICY, MIGRATE_MA_BIT } from "./fake-report.ts";

const VECTORS = fileURLToPath(new URL("../../../shared/vectors/snp", import.meta.url));
const HAVE_VECTORS = existsSync(VECTORS);
const NOW = Date.parse("2026-01-01T00:00:00Z");
const MEASUREMENT = "5a".repeat(48);
const SECURITY_POLICY = "package policy\nallow_all := true\n";
const HOST_DATA = createHash("sha256").update(SECURITY_POLICY).digest("hex");
const MILAN = "00a00f11";

const amd = await makeFakeAmd();
const node = generateP384KeyPair();
const utf8 = (s: string) => new TextEncoder().encode(s);
const json = (v: unknown) => utf8(JSON.stringify(v));

/** The tables as CCF's actions write them. */
function tables(
  opts: { measurements?: string[]; hostData?: string[]; tcb?: Array<[string, unknown]> } = {},
): JoinPolicy {
  const { policy, problems } = snpPolicyFromTables({
    measurements: (opts.measurements ?? [MEASUREMENT]).map((m) => [m, json("AllowedToJoin")]),
    hostData: (opts.hostData ?? [HOST_DATA]).map((h) => [h, json(SECURITY_POLICY)]),
    tcbVersions: (opts.tcb ?? [[MILAN, { boot_loader: 4, tee: 0, snp: 24, microcode: 219 }]]).map(
      ([cpuid, value]) => [cpuid, typeof value === "string" ? utf8(value) : json(value)],
    ),
  });
  return { virtualMeasurements: [codeMeasurement()], snp: policy, snpTcbProblems: problems };
}

function snpEvidence(opts: { key?: string; policy?: bigint; measurement?: string } = {}) {
  const report = fakeReport(amd.vcekKeyPem, {
    reportData: keyReportData(opts.key ?? node.publicKeyPem),
    measurement: opts.measurement ?? MEASUREMENT,
    hostData: HOST_DATA,
    policy: opts.policy ?? GUEST_POLICY,
  });
  return { format: "snp", report: Buffer.from(report).toString("base64"), endorsements: amd.chainPem };
}

const trusted: AttestationCheckOptions = { now: NOW, platform: "virtual", trustedRoots: [amd.arkPem] };

function refusal(attestation: unknown, policy = tables(), options = trusted): string {
  const verdict = checkNodeAttestation(attestation, node.publicKeyPem, policy, options);
  assert.equal(verdict.ok, false, "expected a refusal");
  return (verdict as { reason: string }).reason;
}

test("report data binds the node key: SHA-256 of its SPKI DER, then 32 zero bytes", () => {
  const data = keyReportData(node.publicKeyPem);
  assert.equal(data.length, 64);
  assert.deepEqual(
    Buffer.from(data.subarray(0, 32)),
    createHash("sha256").update(publicKeyDer(node.publicKeyPem)).digest(),
  );
  assert.equal(Buffer.from(data.subarray(0, 32)).toString("hex"), nodeIdOf(node.publicKeyPem));
  assert.ok(data.subarray(32).every((b) => b === 0));
});

test("an SNP joiner whose report binds its key and meets the policy is admitted, with what to record", () => {
  const verdict = checkNodeAttestation(snpEvidence(), node.publicKeyPem, tables(), trusted);
  assert.equal(verdict.ok, true, (verdict as { reason?: string }).reason);
  const view = (verdict as { view: Record<string, unknown> }).view;
  assert.equal(view.format, "snp");
  assert.equal(view.insecure, false);
  assert.equal(view.measurement, MEASUREMENT);
  assert.equal(view.host_data, HOST_DATA);
  assert.equal(view.cpuid, MILAN);
  assert.equal(view.product, "Milan");
  assert.equal(view.report_data, Buffer.from(keyReportData(node.publicKeyPem)).toString("hex"));
  assert.equal(view.endorsements, amd.chainPem);
});

test("a chain not rooted in AMD's bundled roots is refused without the in-process seam", () => {
  const reason = refusal(snpEvidence(), tables(), { now: NOW, platform: "virtual" });
  assert.match(reason, /does not verify: ark-trusted: .*is not AMD's Milan root/);
});

test("a report binding another key is refused, naming the binding", () => {
  const other = generateP384KeyPair();
  const reason = refusal(snpEvidence({ key: other.publicKeyPem }));
  assert.match(reason, /report-data: the report does not bind the joining node's public key/);
  assert.doesNotMatch(reason, /ark-trusted|report-signature/);
});

test("a real vector report verifies against AMD's roots but cannot bind a node key made here", (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const dir = `${VECTORS}/ccf-milan`;
  const attestation = {
    format: "snp",
    report: readFileSync(`${dir}/report.bin`).toString("base64"),
    endorsements: readFileSync(`${dir}/chain.pem`, "utf8"),
  };
  const reason = refusal(attestation, tables(), { now: NOW, platform: "snp" });
  // Only the binding fails: the chain, signature and TCB of the real report are fine.
  assert.match(reason, /^the SNP attestation does not verify: report-data: the report does not bind/);
  assert.doesNotMatch(reason, /;/);
});

test("each SNP policy table constrains: measurement, host data, minimum TCB", () => {
  assert.match(
    refusal(snpEvidence(), tables({ measurements: [] })),
    /measurement 5a5a.* is not among the 0 allowed/,
  );
  assert.match(refusal(snpEvidence(), tables({ hostData: ["00".repeat(32)] })), /host data .* is not among/);
  assert.match(refusal(snpEvidence(), tables({ tcb: [] })), /no minimum TCB is set for CPUID 00a00f11/);
  const higher = tables({ tcb: [[MILAN, { boot_loader: 4, tee: 0, snp: 25, microcode: 219 }]] });
  assert.match(
    refusal(snpEvidence(), higher),
    /REPORTED_TCB is below the minimum for CPUID 00a00f11: snp 24 < 25/,
  );
});

test("debug guests and migration agents are refused", () => {
  assert.match(
    refusal(snpEvidence({ policy: GUEST_POLICY | DEBUG_BIT })),
    /allows debugging \(POLICY bit 19\)/,
  );
  assert.match(refusal(snpEvidence({ policy: GUEST_POLICY | MIGRATE_MA_BIT })), /migration agent/);
});

test("an unreadable minimum-TCB row refuses joiners on that CPU, naming it", () => {
  const policy = tables({ tcb: [[MILAN, "{not json"]] });
  assert.match(
    refusal(snpEvidence(), policy),
    /minimum TCB on record for CPUID 00a00f11 is unusable: .*not JSON/,
  );
  assert.match(
    refusal(snpEvidence(), tables({ tcb: [[MILAN, { hexstring: 7 }]] })),
    /names no TCB component/,
  );
});

test("virtual attestations: checked against the virtual table, refused outright by an SNP node", () => {
  const attestation = virtualAttestation(node.publicKeyPem);
  const ok = checkNodeAttestation(attestation, node.publicKeyPem, tables(), trusted);
  assert.equal(ok.ok, true);
  assert.equal((ok as { view: { insecure: boolean } }).view.insecure, true);
  const none = { ...tables(), virtualMeasurements: [] };
  assert.match(refusal(attestation, none), /not among the allowed virtual measurements/);
  assert.match(
    refusal(attestation, tables(), { ...trusted, platform: "snp" }),
    /runs on SEV-SNP and refuses virtual/,
  );
});

test("malformed evidence is refused with the field that is wrong", () => {
  const good = snpEvidence();
  assert.match(refusal(null), /must be an object/);
  assert.match(refusal({ format: "sgx" }), /unsupported attestation format "sgx"/);
  assert.match(refusal({ ...good, report: "not base64!" }), /attestation.report is not base64/);
  assert.match(refusal({ ...good, report: Buffer.alloc(10).toString("base64") }), /holds 10 bytes, not 1184/);
  assert.match(refusal({ ...good, endorsements: "" }), /endorsements must be the PEM chain/);
  assert.match(refusal({ ...good, endorsements: "x".repeat(70_000) }), /larger than/);
  assert.throws(() => parseSnpEvidence({ report: 5 }), /must be a base64 string/);
});

test("CCF's TCB hex decodes per CPU generation (the CCF docs' Milan example)", () => {
  assert.deepEqual(tcbPolicyFromHex(MILAN, "db18000000000004"), {
    hexstring: "db18000000000004",
    microcode: 219,
    snp: 24,
    tee: 0,
    boot_loader: 4,
  });
  // Turin: [fmc, bootloader, tee, snp, 0, 0, 0, microcode] in report order.
  assert.deepEqual(tcbPolicyFromHex("00b00f21", "4d00000009010503"), {
    hexstring: "4d00000009010503",
    microcode: 77,
    snp: 9,
    tee: 1,
    boot_loader: 5,
    fmc: 3,
  });
  assert.throws(() => tcbPolicyFromHex("00800f10", "00".repeat(8)), /names no SEV-SNP product/);
  assert.throws(() => tcbPolicyFromHex(MILAN, "00"), /16 hex digits/);
});

test("a minimum TCB given as hex or as fields admits exactly the reports at or above it", () => {
  const component = fc.integer({ min: 0, max: 255 });
  const tcb = fc.record({ bl: component, tee: component, snp: component, ucode: component });
  fc.assert(
    fc.property(tcb, tcb, (floor, reported) => {
      const hex = [floor.ucode, floor.snp, 0, 0, 0, 0, floor.tee, floor.bl]
        .map((b) => b.toString(16).padStart(2, "0"))
        .join("");
      const fromHex = tcbFloorFromTable(MILAN, { hexstring: hex });
      const fromFields = tcbFloorFromTable(MILAN, {
        boot_loader: floor.bl,
        tee: floor.tee,
        snp: floor.snp,
        microcode: floor.ucode,
      });
      assert.deepEqual(fromHex, fromFields);
      const expected =
        reported.bl >= floor.bl &&
        reported.tee >= floor.tee &&
        reported.snp >= floor.snp &&
        reported.ucode >= floor.ucode;
      const report = fakeReport(amd.vcekKeyPem, {
        reportData: new Uint8Array(64),
        measurement: MEASUREMENT,
        hostData: HOST_DATA,
        tcb: [reported.bl, reported.tee, 0, 0, 0, 0, reported.snp, reported.ucode],
      });
      const policy = { minimumTcb: { [MILAN]: fromHex } };
      const reasons = checkSnpPolicy(parseSnpReport(report), policy);
      assert.equal(reasons.length === 0, expected);
    }),
    { numRuns: 200 },
  );
});

test("policy tables: keys are normalised to lower case; CCF's value formats are read", () => {
  const { policy, problems } = snpPolicyFromTables({
    measurements: [[MEASUREMENT.toUpperCase(), json("AllowedToJoin")]],
    hostData: [[HOST_DATA, json("")]],
    tcbVersions: [
      ["00A10F11", json({ boot_loader: 10, tee: 0, snp: 23, microcode: 84 })],
      [MILAN, json({ hexstring: "db18000000000004", microcode: 219, snp: 24, tee: 0, boot_loader: 4 })],
      ["00b00f21", json({ microcode: "many" })],
    ],
  });
  assert.deepEqual(policy.measurements, [MEASUREMENT]);
  assert.deepEqual(policy.hostData, [HOST_DATA]);
  assert.deepEqual(policy.minimumTcb, {
    "00a10f11": { bootloader: 10, tee: 0, snp: 23, microcode: 84 },
    [MILAN]: { bootloader: 4, tee: 0, snp: 24, microcode: 219 },
  });
  assert.match(problems["00b00f21"]!, /microcode must be an integer from 0 to 255/);
  assert.equal(policy.debugAllowed, false);
});

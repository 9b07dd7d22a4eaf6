// The public SEV-SNP vectors in ../shared/vectors/snp: every key of each expected.json is
// checked against what Coco decodes and verifies.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { parseSnpReport, type SnpReport, verifySnpReport } from "../../src/tee/index.ts";

const VECTORS = fileURLToPath(new URL("../../../shared/vectors/snp", import.meta.url));
/** Inside every vector certificate's validity window (see the vectors' README). */
const NOW = Date.parse("2026-01-01T00:00:00Z");

const names = existsSync(VECTORS)
  ? readdirSync(VECTORS, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort()
  : [];

test("SNP vectors are present", (t) => {
  if (!existsSync(VECTORS)) return t.skip("no vectors");
  assert.ok(names.length >= 4, `expected at least 4 vectors, found ${names.join(", ")}`);
});

function load(name: string) {
  const dir = `${VECTORS}/${name}`;
  const expected = JSON.parse(readFileSync(`${dir}/expected.json`, "utf8")) as Record<string, unknown>;
  const chain = existsSync(`${dir}/chain.pem`) ? readFileSync(`${dir}/chain.pem`, "utf8") : undefined;
  const bytes = new Uint8Array(readFileSync(`${dir}/report.bin`));
  return { dir, expected, chain, bytes, report: parseSnpReport(bytes) };
}

type Ctx = ReturnType<typeof load>;

/** One handler per expected.json key; a key without a handler fails the test. */
const HANDLERS: Record<string, (value: unknown, ctx: Ctx) => void> = {
  version: (v, { report }) => assert.equal(report.version, v),
  measurement_hex: (v, { report }) => assert.equal(report.measurement, v),
  report_data_hex: (v, { report }) => assert.equal(report.reportData, v),
  chip_id_hex: (v, { report }) => assert.equal(report.chipId, v),
  reported_tcb_hex: (v, { report }) => assert.equal(report.reportedTcb.hex, v),
  reported_tcb_u64_hex: (v, { report }) => assert.equal(report.reportedTcb.u64, v),
  reported_tcb: (v, { report }) => {
    const { bootloader, tee, snp, microcode } = report.reportedTcb;
    assert.deepEqual({ bootloader, tee, snp, microcode }, v);
  },
  signature_algo: (v, { report }) => assert.equal(report.signatureAlgo, v),
  vmpl: (v, { report }) => assert.equal(report.vmpl, v),
  policy_u64_hex: (v, { report }) => assert.equal(report.policy.raw, v),
  cpuid: (v, { report }) => {
    const c = v as { fam: number; mod: number; step: number };
    assert.deepEqual(report.cpuid, { family: c.fam, model: c.mod, stepping: c.step });
  },
  product: (v, { report, chain }) => {
    if (report.cpuid) assert.equal(report.cpuidProduct, v, "CPUID product");
    if (chain) assert.equal(verifySnpReport(report, { chain, now: NOW }).product, v, "ARK product");
    // A v2 report without a chain names no product; make sure that is the case here.
    if (!report.cpuid && !chain) assert.equal(report.version, 2);
  },
  signature_valid: (v, { report, chain }) => {
    if (v === null) return assert.equal(chain, undefined, "signature_valid null means no chain");
    const check = verifySnpReport(report, { chain: chain! }).checks.find(
      (c) => c.name === "report-signature",
    );
    assert.equal(check?.ok, v);
  },
  chain_valid: (v, { report, chain }) => {
    if (v === null) return assert.equal(chain, undefined);
    const result = verifySnpReport(report, { chain: chain! });
    for (const name of ["ark-self-signed", "ask-signed-by-ark", "vcek-signed-by-ask"]) {
      assert.equal(result.checks.find((c) => c.name === name)?.ok, v, name);
    }
  },
  tampered: (v, { dir, chain }) => {
    const t = v as { file: string; signature_valid: boolean; chain_valid: boolean };
    const tampered = parseSnpReport(new Uint8Array(readFileSync(`${dir}/${t.file}`)));
    const result = verifySnpReport(tampered, { chain: chain!, now: NOW });
    assert.equal(result.checks.find((c) => c.name === "report-signature")?.ok, t.signature_valid);
    assert.equal(result.checks.find((c) => c.name === "vcek-signed-by-ask")?.ok, t.chain_valid);
    assert.equal(result.ok, false);
    assert.deepEqual(result.failed, ["report-signature"]);
  },
  // Prose for people; the facts it states are covered by the keys above.
  note: (v) => assert.equal(typeof v, "string"),
  // Verified upstream against a VCEK that is not shipped; only its absence can be checked here.
  independent_check: (_v, { chain }) => assert.equal(chain, undefined),
};

for (const name of names) {
  test(`vector ${name}: every expected.json key matches`, () => {
    const ctx = load(name);
    const keys = Object.keys(ctx.expected);
    assert.ok(keys.length > 5);
    for (const key of keys) {
      const handler = HANDLERS[key];
      assert.ok(handler, `no check for expected.json key ${key}`);
      handler(ctx.expected[key], ctx);
    }
  });

  test(`vector ${name}: verifies, or is parse-only without a chain`, () => {
    const { report, chain, expected } = load(name);
    if (!chain) {
      assert.equal(expected.signature_valid, null);
      const result = verifySnpReport(report, {});
      assert.equal(result.ok, false);
      assert.deepEqual(result.failed, ["chain-format"]);
      return;
    }
    const result = verifySnpReport(report, { chain, now: NOW });
    assert.equal(result.ok, true, JSON.stringify(result.checks.filter((c) => !c.ok)));
    assert.deepEqual(
      result.checks.filter((c) => c.skipped).map((c) => c.name),
      ["crl"],
    );
  });
}

test("decoded vector fields are internally consistent", (t) => {
  if (names.length === 0) return t.skip("no vectors");
  for (const name of names) {
    const r: SnpReport = load(name).report;
    assert.equal(r.signingKey, "vcek", name);
    assert.equal(r.policy.reservedOne, true, `${name}: policy bit 17 must be set`);
    assert.equal(r.policy.debugAllowed, false, name);
    assert.equal(r.chipIdMasked, false, name);
    assert.match(r.signature.r, /^[0-9a-f]{96}$/);
  }
});

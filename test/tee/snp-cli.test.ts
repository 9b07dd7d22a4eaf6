// `coco attestation` as a subprocess: exit 0 valid, 1 invalid, 2 bad usage or unreadable input.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { coco } from "../helpers/cli.ts";

const VECTORS = fileURLToPath(new URL("../../../shared/vectors/snp", import.meta.url));
const HAVE_VECTORS = existsSync(VECTORS);
const TMP = mkdtempSync(join(tmpdir(), "coco-snp-cli-"));
after(() => rmSync(TMP, { recursive: true, force: true }));

const genoa = (file: string) => `${VECTORS}/ccf-genoa/${file}`;
const GENOA_MEASUREMENT =
  "5feee30d6d7e1a29f403d70a4198237ddfb13051a2d6976439487c609388ed7f98189887920ab2fa0096903a0c23fca1";
/** `coco attestation verify` of the Genoa vector's report against its own chain, with `options`. */
const verifyGenoa = (...options: string[]) =>
  coco(["attestation", "verify", genoa("report.bin"), "--chain", genoa("chain.pem"), ...options]);

test("verify: a valid report prints its fields and checks and exits 0", (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const r = verifyGenoa("--measurement", GENOA_MEASUREMENT);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`measurement: +${GENOA_MEASUREMENT}`));
  assert.match(r.stdout, /cpu: +family 0x19 model 0x11 stepping 1 \(Genoa\)/);
  assert.match(r.stdout, /ok {3}report-signature:/);
  assert.match(r.stdout, /ok {3}measurement: MEASUREMENT is as expected/);
  assert.match(r.stdout, /attestation OK \(Genoa\)/);
});

test("verify: a tampered report exits 1 naming the signature check", (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const r = coco(["attestation", "verify", genoa("report-tampered.bin"), "--chain", genoa("chain.pem")]);
  assert.equal(r.status, 1);
  assert.match(r.stdout, /FAIL report-signature: the report's signature does not verify/);
  assert.match(r.stderr, /attestation INVALID: report-signature failed/);
});

test("verify --json: the decoded report and every check, machine-readable", (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const r = verifyGenoa("--report-data", "11".repeat(64), "--json");
  assert.equal(r.status, 1);
  const out = JSON.parse(r.stdout) as {
    report: { measurement: string; reportedTcb: { hex: string }; bytes?: unknown };
    verification: { ok: boolean; failed: string[]; product: string; checks: { name: string }[] };
  };
  assert.equal(out.report.measurement, GENOA_MEASUREMENT);
  assert.equal(out.report.reportedTcb.hex, "0a00000000001754");
  assert.equal(out.report.bytes, undefined);
  assert.equal(out.verification.ok, false);
  assert.deepEqual(out.verification.failed, ["report-data"]);
  assert.equal(out.verification.product, "Genoa");
  assert.ok(out.verification.checks.length >= 12);
});

test("verify without a chain is invalid (exit 1), not a usage error", (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const r = coco(["attestation", "verify", genoa("report.bin")]);
  assert.equal(r.status, 1);
  assert.match(r.stdout, /FAIL chain-format: no certificates given/);
});

test("bad usage and unreadable input exit 2 with the reason", (t) => {
  const missing = coco(["attestation", "verify"]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /missing required argument 'report'/);
  const unknown = coco(["attestation", "verify", "x.bin", "--bogus"]);
  assert.equal(unknown.status, 2);
  const absent = coco(["attestation", "verify", join(TMP, "absent.bin")]);
  assert.equal(absent.status, 2);
  assert.match(absent.stderr, /cannot read report .*absent\.bin/);
  const short = join(TMP, "short.bin");
  writeFileSync(short, Buffer.alloc(100));
  const truncated = coco(["attestation", "verify", short]);
  assert.equal(truncated.status, 2);
  assert.match(truncated.stderr, /1184 bytes; this one is 100/);
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const badHex = verifyGenoa("--measurement", "xyz");
  assert.equal(badHex.status, 2);
  assert.match(badHex.stderr, /48 bytes/);
  const noChainFile = coco([
    "attestation",
    "verify",
    genoa("report.bin"),
    "--chain",
    join(TMP, "absent.pem"),
  ]);
  assert.equal(noChainFile.status, 2);
  assert.match(noChainFile.stderr, /cannot read chain/);
});

test("show decodes a report that has no chain (the v2 vector)", (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const r = coco(["attestation", "show", `${VECTORS}/ccf-v2-milan/report.bin`]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /version: +2/);
  assert.match(r.stdout, /cpu: +not in a v2 report/);
  assert.match(r.stdout, /reported tcb: +bootloader 3, tee 0, snp 8, microcode 115 \(0300000000000873\)/);
});

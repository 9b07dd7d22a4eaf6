// `snp_attestation.verifySnpAttestation` as apps written against @microsoft/ccf-app call it,
// checked against the public SEV-SNP vectors and their expected fields.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { createJsEngine, JsError } from "../../src/js/index.ts";

const VECTORS = fileURLToPath(new URL("../../../shared/vectors/snp", import.meta.url));
const HAVE_VECTORS = existsSync(VECTORS);

const engine = await createJsEngine({ env: { now: () => 0, randomBytes: (n) => new Uint8Array(n) } });
const modules = {
  "app.js": `
    export function verify(...args) { return snp_attestation.verifySnpAttestation(...args); }
    export function failure(...args) {
      try {
        snp_attestation.verifySnpAttestation(...args);
        return "no error";
      } catch (e) {
        return { type: e instanceof RangeError ? "RangeError" : e instanceof TypeError ? "TypeError" : "other", message: e.message };
      }
    }
  `,
};

interface Expected {
  version: number;
  measurement_hex: string;
  report_data_hex: string;
  chip_id_hex: string;
  reported_tcb_hex: string;
  reported_tcb: { bootloader: number; tee: number; snp: number; microcode: number };
  signature_algo: number;
  vmpl: number;
  policy_u64_hex: string;
  cpuid?: { fam: number; mod: number; step: number };
}

function vector(name: string) {
  const dir = `${VECTORS}/${name}`;
  return {
    report: new Uint8Array(readFileSync(`${dir}/report.bin`)),
    tampered: new Uint8Array(readFileSync(`${dir}/report-tampered.bin`)),
    chain: new Uint8Array(readFileSync(`${dir}/chain.pem`)),
    expected: JSON.parse(readFileSync(`${dir}/expected.json`, "utf8")) as Expected,
  };
}

// biome-ignore lint/suspicious/noExplicitAny: the result is the package's loosely typed object
function verify(...args: unknown[]): any {
  return engine.call({ modules, entry: "app.js", fn: "verify", args });
}

function failure(...args: unknown[]): { type: string; message: string } {
  return engine.call({ modules, entry: "app.js", fn: "failure", args }) as { type: string; message: string };
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

for (const name of ["ccf-milan", "ccf-genoa", "virtee-milan"]) {
  test(`${name}: verifies and returns the report's fields in CCF's shape`, (t) => {
    if (!HAVE_VECTORS) return t.skip("no vectors");
    const v = vector(name);
    const a = verify(v.report, v.chain).attestation;
    assert.equal(a.version, v.expected.version);
    assert.equal(hex(a.measurement), v.expected.measurement_hex);
    assert.equal(hex(a.report_data), v.expected.report_data_hex);
    assert.equal(hex(a.chip_id), v.expected.chip_id_hex);
    assert.deepEqual(a.reported_tcb, {
      boot_loader: v.expected.reported_tcb.bootloader,
      tee: v.expected.reported_tcb.tee,
      snp: v.expected.reported_tcb.snp,
      microcode: v.expected.reported_tcb.microcode,
    });
    assert.equal(a.signature_algo, v.expected.signature_algo);
    assert.equal(a.vmpl, v.expected.vmpl);
    if (v.expected.cpuid) {
      assert.deepEqual(
        [a.cpuid_fam_id, a.cpuid_mod_id, a.cpuid_step],
        [v.expected.cpuid.fam, v.expected.cpuid.mod, v.expected.cpuid.step],
      );
    }
    const policy = Number(BigInt(v.expected.policy_u64_hex));
    assert.deepEqual(a.policy, {
      abi_minor: policy & 0xff,
      abi_major: (policy >> 8) & 0xff,
      smt: (policy >> 16) & 1,
      migrate_ma: 0,
      debug: 0,
      single_socket: 0,
    });
    assert.equal(a.flags.signing_key, 0);
    assert.equal(a.signature.r.length, 72);
    assert.equal(a.host_data.length, 32);
    assert.equal(verify(v.report, v.chain).uvm_endorsements, undefined);
    // The endorsed TCB, when given, must be the reported one (16 hex digits in report order).
    assert.equal(
      hex(verify(v.report, v.chain, undefined, v.expected.reported_tcb_hex).attestation.measurement),
      v.expected.measurement_hex,
    );
  });
}

test("a tampered report is a RangeError naming the failed check", (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const v = vector("ccf-genoa");
  const f = failure(v.tampered, v.chain);
  assert.equal(f.type, "RangeError");
  assert.match(f.message, /does not verify: report-signature/);
  const milan = vector("ccf-milan");
  assert.match(failure(v.report, milan.chain).message, /does not verify: .*product/);
});

test("a different endorsed TCB is refused, as CCF refuses it", (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const v = vector("ccf-milan");
  const f = failure(v.report, v.chain, undefined, "0000000000000000");
  assert.equal(f.type, "RangeError");
  assert.match(f.message, /endorsed TCB 0000000000000000 does not match reported TCB 04000000000018db/);
});

test("UVM endorsements are refused as unsupported rather than ignored", (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const v = vector("ccf-milan");
  const f = failure(v.report, v.chain, new Uint8Array(4));
  assert.equal(f.type, "RangeError");
  assert.match(f.message, /uvm_endorsements .* not supported/);
});

test("wrong argument types and counts are TypeErrors", () => {
  assert.deepEqual(failure("report", new Uint8Array(1)), {
    type: "TypeError",
    message: "evidence must be an ArrayBuffer",
  });
  assert.equal(failure(new Uint8Array(1)).type, "TypeError");
  assert.match(failure(new Uint8Array(1)).message, /takes 2 to 4 arguments, not 1/);
  assert.equal(failure(new Uint8Array(1), new Uint8Array(1), undefined, 7).type, "TypeError");
  assert.deepEqual(failure(new Uint8Array(10), new Uint8Array(1)).type, "RangeError");
  assert.match(failure(new Uint8Array(10), new Uint8Array(1)).message, /1184 bytes/);
});

test("the global is installed for every call, next to ccf", () => {
  const probe = {
    "p.js": "export function f() { return typeof snp_attestation.verifySnpAttestation + typeof ccf; }",
  };
  assert.equal(engine.call({ modules: probe, entry: "p.js", fn: "f" }), "functionobject");
  assert.throws(
    () => engine.call({ modules, entry: "app.js", fn: "verify", args: [new Uint8Array(1)] }),
    (e: unknown) => e instanceof JsError && /TypeError/.test(e.message),
  );
});

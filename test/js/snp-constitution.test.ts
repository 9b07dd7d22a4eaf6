// Coco's constitution writes the SNP join-policy tables byte for byte as CCF's default
// constitution (6.0.1, unmodified) does, and its `_hex` TCB action as CCF's later releases do.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { defaultConstitution } from "../../src/gov/index.ts";
import { createJsEngine, createModuleSet, MemoryKv } from "../../src/js/index.ts";
import { snpPolicyFromTables } from "../../src/tee/index.ts";

const vectors = new URL("../../../shared/vectors/ccf/constitution-default/", import.meta.url);
const present = existsSync(new URL("actions.js", vectors));
const ccfModules = createModuleSet({
  "constitution.js": present
    ? ["actions.js", "validate.js", "resolve.js", "apply.js"]
        .map((f) => readFileSync(new URL(f, vectors), "utf8"))
        .join("\n")
    : "export {}",
});
const cocoModules = createModuleSet({ "constitution.js": defaultConstitution() });
const engine = await createJsEngine({ env: { now: () => 0, randomBytes: (n) => new Uint8Array(n) } });

const TABLES = [
  "public:ccf.gov.nodes.snp.measurements",
  "public:ccf.gov.nodes.snp.host_data",
  "public:ccf.gov.nodes.snp.tcb_versions",
];
const POLICY = "package coco\ndefault allow := true\n";
const HOST_DATA = createHash("sha256").update(POLICY).digest("hex");
const MEASUREMENT =
  "5feee30d6d7e1a29f403d70a4198237ddfb13051a2d6976439487c609388ed7f98189887920ab2fa0096903a0c23fca1";

function apply(modules: typeof cocoModules, kv: MemoryKv, name: string, args: unknown): void {
  const proposal = JSON.stringify({ actions: [{ name, args }] });
  const verdict = engine.call({
    modules,
    entry: "constitution.js",
    fn: "validate",
    args: [proposal],
    readOnly: true,
    kv,
  }) as { valid: boolean; description: string };
  assert.equal(verdict.valid, true, `${name} must validate: ${verdict.description}`);
  engine.call({ modules, entry: "constitution.js", fn: "apply", args: [proposal, "p"], kv });
}

function rows(kv: MemoryKv, map: string): Array<[string, string]> {
  return [...kv.entries(map)].map(([k, v]) => [Buffer.from(k).toString(), Buffer.from(v).toString()]);
}

function snapshot(kv: MemoryKv) {
  return Object.fromEntries(TABLES.map((t) => [t, rows(kv, t)]));
}

const STEPS: Array<[string, unknown]> = [
  ["add_snp_measurement", { measurement: MEASUREMENT }],
  ["add_snp_measurement", { measurement: "ab".repeat(48) }],
  ["add_snp_host_data", { host_data: HOST_DATA, security_policy: POLICY }],
  ["add_snp_host_data", { host_data: "cd".repeat(32), security_policy: "" }],
  [
    "set_snp_minimum_tcb_version",
    { cpuid: "00a10f11", tcb_version: { boot_loader: 10, tee: 0, snp: 23, microcode: 84 } },
  ],
  [
    "set_snp_minimum_tcb_version",
    { cpuid: "00a00f11", tcb_version: { boot_loader: 4, tee: 0, snp: 24, microcode: 219 } },
  ],
  ["remove_snp_measurement", { measurement: "ab".repeat(48) }],
  ["remove_snp_host_data", { host_data: "cd".repeat(32) }],
  ["remove_snp_minimum_tcb_version", { cpuid: "00a00f11" }],
];

test("the SNP actions CCF 6.0.1 has write the same rows in Coco's constitution as in CCF's", (t) => {
  if (!present) return t.skip("no CCF vectors");
  const ccf = new MemoryKv();
  const coco = new MemoryKv();
  STEPS.forEach(([name, args], i) => {
    apply(ccfModules, ccf, name, args);
    apply(cocoModules, coco, name, args);
    assert.deepEqual(snapshot(coco), snapshot(ccf), `after step ${i}: ${name}`);
  });
  assert.deepEqual(rows(coco, "public:ccf.gov.nodes.snp.host_data"), [[HOST_DATA, JSON.stringify(POLICY)]]);
  assert.deepEqual(rows(coco, "public:ccf.gov.nodes.snp.measurements"), [[MEASUREMENT, '"AllowedToJoin"']]);
});

test("set_snp_minimum_tcb_version_hex stores CCF's TCB policy: the hex and its decoded components", () => {
  const kv = new MemoryKv();
  apply(cocoModules, kv, "set_snp_minimum_tcb_version_hex", {
    cpuid: "00a00f11",
    tcb_version: "db18000000000004",
  });
  apply(cocoModules, kv, "set_snp_minimum_tcb_version_hex", {
    cpuid: "00b00f21",
    tcb_version: "4d00000009010503",
  });
  assert.deepEqual(rows(kv, "public:ccf.gov.nodes.snp.tcb_versions"), [
    [
      "00a00f11",
      JSON.stringify({ hexstring: "db18000000000004", microcode: 219, snp: 24, tee: 0, boot_loader: 4 }),
    ],
    [
      "00b00f21",
      JSON.stringify({
        hexstring: "4d00000009010503",
        microcode: 77,
        snp: 9,
        tee: 1,
        boot_loader: 5,
        fmc: 3,
      }),
    ],
  ]);
  // The node reads back exactly what the action wrote.
  const { policy, problems } = snpPolicyFromTables({
    measurements: [],
    hostData: [],
    tcbVersions: [...kv.entries("public:ccf.gov.nodes.snp.tcb_versions")].map(([k, v]) => [
      Buffer.from(k).toString(),
      v,
    ]),
  });
  assert.deepEqual(problems, {});
  assert.deepEqual(policy.minimumTcb["00a00f11"], { bootloader: 4, tee: 0, snp: 24, microcode: 219 });
  assert.deepEqual(policy.minimumTcb["00b00f21"], { bootloader: 5, tee: 1, snp: 9, microcode: 77, fmc: 3 });
});

test("Coco validates SNP arguments before anything is stored, saying why", () => {
  const kv = new MemoryKv();
  const invalid = (name: string, args: unknown) =>
    (
      engine.call({
        modules: cocoModules,
        entry: "constitution.js",
        fn: "validate",
        args: [JSON.stringify({ actions: [{ name, args }] })],
        readOnly: true,
        kv,
      }) as { valid: boolean; description: string }
    ).description;
  assert.match(invalid("add_snp_measurement", { measurement: "abc" }), /measurement must be 48 bytes of hex/);
  assert.match(
    invalid("add_snp_host_data", { host_data: "00".repeat(32), security_policy: POLICY }),
    /SHA-256 of security_policy is/,
  );
  assert.match(
    invalid("set_snp_minimum_tcb_version_hex", { cpuid: "00A00F11", tcb_version: "db18000000000004" }),
    /cpuid must be 8 lower-case hex digits/,
  );
  assert.match(
    invalid("set_snp_minimum_tcb_version_hex", { cpuid: "00800f10", tcb_version: "db18000000000004" }),
    /names no SEV-SNP product/,
  );
  assert.match(
    invalid("set_snp_minimum_tcb_version_hex", { cpuid: "00a00f11", tcb_version: "db18" }),
    /16 lower-case hex digits/,
  );
  assert.match(
    invalid("set_snp_minimum_tcb_version", { cpuid: "00a00f11", tcb_version: { tee: 1 } }),
    /tcb_version.boot_loader must be an integer/,
  );
  assert.throws(
    () => apply(cocoModules, kv, "remove_snp_minimum_tcb_version", { cpuid: "00a00f11" }),
    /CPUID 00a00f11 not found/,
  );
});

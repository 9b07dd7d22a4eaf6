// Verification against the public vectors (negative cases) and against chains made here, which
// stand in for what no public vector shows: VLEK, Turin, CRLs, TCB and chip mismatches.
import "reflect-metadata";
import assert from "node:assert/strict";
import { createHash, type KeyObject, sign, webcrypto, X509Certificate } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import * as x509 from "@peculiar/x509";
import {
  amdRootFor,
  parseSnpReport,
  SNP_REPORT_SIZE,
  SnpError,
  type SnpVerification,
  type SnpVerifyOptions,
  verifySnpReport,
} from "../../src/tee/index.ts";
import {
  type FakeChainSpec,
  makeFakeChain,
  NOT_AFTER,
  NOT_BEFORE,
  PSS,
  type RsaPssKeys,
  rsaPssKeys,
} from "./fake-amd.ts";
import { CHIP_ID, MILAN_TCB } from "./fake-report.ts";

x509.cryptoProvider.set(webcrypto as ReturnType<typeof x509.cryptoProvider.get>);

const VECTORS = fileURLToPath(new URL("../../../shared/vectors/snp", import.meta.url));
const HAVE_VECTORS = existsSync(VECTORS);
const NOW = Date.parse("2026-01-01T00:00:00Z");

function vector(name: string) {
  const chain = readFileSync(`${VECTORS}/${name}/chain.pem`, "utf8");
  const certs = chain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g)!;
  return {
    bytes: new Uint8Array(readFileSync(`${VECTORS}/${name}/report.bin`)),
    chain,
    vcek: certs[0]!,
    ask: certs[1]!,
    ark: certs[2]!,
  };
}

function failedNames(result: SnpVerification): string[] {
  return result.failed;
}

function detail(result: SnpVerification, name: string): string {
  return result.checks.find((c) => c.name === name)?.detail ?? "";
}

function derOf(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ""), "base64");
}

// ---------------------------------------------------------------- vectors

test("bundled Milan and Genoa roots are the ARKs in the vectors, byte for byte", (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  assert.deepEqual(derOf(amdRootFor("Milan")), derOf(vector("ccf-milan").ark));
  assert.deepEqual(derOf(amdRootFor("Milan")), derOf(vector("virtee-milan").ark));
  assert.deepEqual(derOf(amdRootFor("Genoa")), derOf(vector("ccf-genoa").ark));
});

test("bundled roots are self-signed AMD ARKs with their published fingerprints", () => {
  const pinned = {
    Milan: "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd",
    Genoa: "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1",
    Turin: "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a",
  } as const;
  for (const [product, fingerprint] of Object.entries(pinned) as [keyof typeof pinned, string][]) {
    const pem = amdRootFor(product);
    const cert = new X509Certificate(pem);
    assert.ok(cert.verify(cert.publicKey), `${product} ARK self-signature`);
    assert.match(cert.subject, new RegExp(`CN=ARK-${product}$`));
    assert.equal(createHash("sha256").update(derOf(pem)).digest("hex"), fingerprint);
  }
  assert.throws(
    () => amdRootFor("Bergamo" as "Milan"),
    (e) => e instanceof SnpError && e.code === "unknown-product",
  );
});

test("a Milan report with the Genoa chain is refused: product, signature, TCB and chip", (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const result = verifySnpReport(vector("ccf-milan").bytes, { chain: vector("ccf-genoa").chain, now: NOW });
  assert.equal(result.ok, false);
  assert.deepEqual(failedNames(result), ["product", "report-signature", "tcb", "chip-id"]);
  assert.match(detail(result, "product"), /Milan, the chain is for Genoa/);
});

test("a swapped ASK (Genoa ASK in a Milan chain) is refused at both chain links", (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const milan = vector("ccf-milan");
  const result = verifySnpReport(milan.bytes, {
    vcek: milan.vcek,
    ask: vector("ccf-genoa").ask,
    ark: milan.ark,
    now: NOW,
  });
  assert.equal(result.ok, false);
  for (const name of ["product", "ask-signed-by-ark", "vcek-signed-by-ask"])
    assert.ok(result.failed.includes(name as never), name);
  // The report itself is still signed by this VCEK.
  assert.equal(result.checks.find((c) => c.name === "report-signature")?.ok, true);
});

test("certificates may come separately, and a missing ARK is taken from the bundled roots", (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const v = vector("ccf-genoa");
  assert.equal(verifySnpReport(v.bytes, { vcek: v.vcek, ask: v.ask, ark: v.ark, now: NOW }).ok, true);
  const noArk = verifySnpReport(v.bytes, { chain: v.vcek + v.ask, now: NOW });
  assert.equal(noArk.ok, true);
  assert.match(detail(noArk, "chain-format"), /ARK-Genoa \(bundled\)/);
});

test("malformed chains are refused at chain-format with the reason", (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const v = vector("ccf-milan");
  const cases: [SnpVerifyOptions, RegExp][] = [
    [{}, /no certificates given/],
    [{ chain: v.vcek + v.ark }, /expected one ASK or ASVK/],
    [{ chain: v.ask + v.ark }, /expected one VCEK or VLEK/],
    [{ chain: v.vcek + v.vcek + v.ask }, /expected one VCEK or VLEK \(EC key\), found 2/],
    [{ chain: "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n" }, /not valid base64/],
    [
      { chain: `${v.chain}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n` },
      /PRIVATE KEY block/,
    ],
  ];
  for (const [options, reason] of cases) {
    const result = verifySnpReport(v.bytes, options);
    assert.equal(result.ok, false);
    assert.deepEqual(result.failed, ["chain-format"]);
    assert.match(detail(result, "chain-format"), reason);
  }
});

test("a required product other than the chain's is refused", (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const v = vector("virtee-milan");
  assert.equal(verifySnpReport(v.bytes, { chain: v.chain, product: "Milan", now: NOW }).ok, true);
  const result = verifySnpReport(v.bytes, { chain: v.chain, product: "Genoa", now: NOW });
  assert.deepEqual(result.failed, ["product"]);
});

test("certificate validity is checked at the injected time only", (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const v = vector("virtee-milan"); // VCEK valid 2023-04-03 to 2030-04-03
  const late = verifySnpReport(v.bytes, { chain: v.chain, now: Date.parse("2031-01-01T00:00:00Z") });
  assert.deepEqual(late.failed, ["validity"]);
  assert.match(detail(late, "validity"), /SEV-VCEK is valid/);
  const early = verifySnpReport(v.bytes, { chain: v.chain, now: Date.parse("2023-01-01T00:00:00Z") });
  assert.deepEqual(early.failed, ["validity"]);
  const unchecked = verifySnpReport(v.bytes, { chain: v.chain });
  assert.equal(unchecked.checks.find((c) => c.name === "validity")?.skipped, true);
});

test("expected report data and measurement are compared when given", (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const v = vector("virtee-milan");
  const r = parseSnpReport(v.bytes);
  const good = verifySnpReport(r, {
    chain: v.chain,
    now: NOW,
    expectedMeasurement: r.measurement.toUpperCase(),
    expectedReportData: Buffer.from(r.reportData, "hex"),
  });
  assert.equal(good.ok, true);
  const bad = verifySnpReport(r, {
    chain: v.chain,
    now: NOW,
    expectedMeasurement: "00".repeat(48),
    expectedReportData: "11".repeat(64),
  });
  assert.deepEqual(bad.failed, ["report-data", "measurement"]);
  assert.throws(
    () => verifySnpReport(r, { chain: v.chain, expectedMeasurement: "abcd" }),
    (e) => e instanceof SnpError && e.code === "bad-input" && /48 bytes/.test(e.message),
  );
});

test("unreadable report bytes throw before any check: truncated, version 1, unknown algorithm", (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const v = vector("ccf-milan");
  const expectCode = (bytes: Uint8Array, code: string) =>
    assert.throws(
      () => verifySnpReport(bytes, { chain: v.chain }),
      (e) => e instanceof SnpError && e.code === code,
    );
  expectCode(v.bytes.subarray(0, 1000), "bad-size");
  const v1 = Uint8Array.from(v.bytes);
  v1[0] = 1;
  expectCode(v1, "unsupported-version");
  const algo = Uint8Array.from(v.bytes);
  algo[0x34] = 2;
  expectCode(algo, "unsupported-signature-algorithm");
});

// ---------------------------------------------------------------- chains made here

// The TCB of makeFakeChain's default Turin VCEK (fmc 3, bl 5, tee 1, snp 9, ucode 77), in report order.
const TURIN_TCB = [3, 5, 1, 9, 0, 0, 0, 77];

// RSA key generation is the slow part, so three keys serve every chain: ARK, ASK and a stranger.
let keyPool: Promise<RsaPssKeys[]> | undefined;
function keys() {
  keyPool ??= Promise.all([rsaPssKeys(), rsaPssKeys(), rsaPssKeys()]);
  return keyPool;
}

async function makeChain(spec: FakeChainSpec = {}) {
  const [ark, ask] = (await keys()) as [RsaPssKeys, RsaPssKeys];
  const { arkCert, askCert, leafCert, leafKey } = await makeFakeChain({ ...spec, keys: [ark, ask] });
  const arkPem = arkCert.toString("pem");
  return {
    arkPem,
    askPem: askCert.toString("pem"),
    leafPem: leafCert.toString("pem"),
    chain: [leafCert, askCert, arkCert].map((c) => c.toString("pem")).join("\n"),
    leafKey,
    ark,
    arkCert,
    trust: { trustedRoots: [arkPem], now: NOW },
  };
}

/** A v3 report for the given CPU, signed with `key` (after `mutate`, if any). */
function report(
  key: KeyObject,
  opts: { turin?: boolean; keyInfo?: number; mutate?: (b: Uint8Array) => void } = {},
) {
  const bytes = new Uint8Array(SNP_REPORT_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, opts.turin ? 5 : 3, true);
  view.setBigUint64(0x008, 0x30000n, true);
  view.setUint32(0x034, 1, true);
  view.setUint32(0x048, opts.keyInfo ?? 0, true);
  const tcb = opts.turin ? TURIN_TCB : MILAN_TCB;
  for (const at of [0x038, 0x180, 0x1e0, 0x1f0]) bytes.set(tcb, at);
  bytes.set(opts.turin ? [0x1a, 0x02, 0x00] : [0x19, 0x01, 0x01], 0x188);
  bytes.set(CHIP_ID, 0x1a0);
  bytes.fill(0x5a, 0x90, 0xc0);
  opts.mutate?.(bytes);
  const sig = sign("sha384", bytes.subarray(0, 0x2a0), { key, dsaEncoding: "ieee-p1363" });
  bytes.set(Uint8Array.from(sig.subarray(0, 48)).reverse(), 0x2a0);
  bytes.set(Uint8Array.from(sig.subarray(48)).reverse(), 0x2e8);
  return bytes;
}

test("a chain made here verifies with its root configured, and is refused against AMD's roots", async () => {
  const c = await makeChain();
  const bytes = report(c.leafKey);
  const trusted = verifySnpReport(bytes, { chain: c.chain, ...c.trust });
  assert.equal(trusted.ok, true, JSON.stringify(trusted.checks.filter((x) => !x.ok)));
  const amd = verifySnpReport(bytes, { chain: c.chain, now: NOW });
  assert.deepEqual(amd.failed, ["ark-trusted"]);
  assert.match(detail(amd, "ark-trusted"), /is not AMD's Milan root/);
});

test("VLEK: a report with SIGNING_KEY 1 verifies through the ASVK, with no chip check", async () => {
  const c = await makeChain({ vlek: true });
  const result = verifySnpReport(report(c.leafKey, { keyInfo: 1 << 2 }), { chain: c.chain, ...c.trust });
  assert.equal(result.ok, true, JSON.stringify(result.checks.filter((x) => !x.ok)));
  assert.match(detail(result, "signing-key"), /VLEK, certified by the ASVK/);
  assert.equal(result.checks.find((x) => x.name === "chip-id")?.skipped, true);
});

test("the report's signing key must match the kind of chain", async () => {
  const vlek = await makeChain({ vlek: true });
  const vcekReport = verifySnpReport(report(vlek.leafKey), { chain: vlek.chain, ...vlek.trust });
  assert.deepEqual(vcekReport.failed, ["signing-key"]);
  assert.match(
    detail(vcekReport, "signing-key"),
    /says VCEK, but the chain has SEV-VLEK under SEV-VLEK-Milan/,
  );
  const vcek = await makeChain();
  const vlekReport = verifySnpReport(report(vcek.leafKey, { keyInfo: 1 << 2 }), {
    chain: vcek.chain,
    ...vcek.trust,
  });
  assert.deepEqual(vlekReport.failed, ["signing-key"]);
  const none = verifySnpReport(report(vcek.leafKey, { keyInfo: 7 << 2 }), {
    chain: vcek.chain,
    ...vcek.trust,
  });
  assert.deepEqual(none.failed, ["signing-key"]);
});

test("a VCEK certifying another TCB or chip is refused, naming the component", async () => {
  const c = await makeChain({
    spl: { bl: 4, tee: 0, snp: 23, ucode: 219 },
    hwID: new Uint8Array(64).fill(9),
  });
  const result = verifySnpReport(report(c.leafKey), { chain: c.chain, ...c.trust });
  assert.deepEqual(result.failed, ["tcb", "chip-id"]);
  assert.match(detail(result, "tcb"), /snpSPL 23 vs report 24/);
});

test("Turin: FMC-first TCB layout, fmcSPL and the 8-byte hwID are checked", async () => {
  const c = await makeChain({ product: "Turin" });
  const good = verifySnpReport(report(c.leafKey, { turin: true }), { chain: c.chain, ...c.trust });
  assert.equal(good.ok, true, JSON.stringify(good.checks.filter((x) => !x.ok)));
  assert.equal(good.product, "Turin");
  assert.match(detail(good, "tcb"), /fmcSPL=3/);
  const wrongFmc = await makeChain({ product: "Turin", spl: { fmc: 2, bl: 5, tee: 1, snp: 9, ucode: 77 } });
  const bad = verifySnpReport(report(wrongFmc.leafKey, { turin: true }), {
    chain: wrongFmc.chain,
    ...wrongFmc.trust,
  });
  assert.deepEqual(bad.failed, ["tcb"]);
  assert.match(detail(bad, "tcb"), /fmcSPL 2 vs report 3/);
  // Against AMD's real Turin root a chain made here is not trusted.
  assert.deepEqual(verifySnpReport(report(c.leafKey, { turin: true }), { chain: c.chain, now: NOW }).failed, [
    "ark-trusted",
  ]);
});

test("a report whose CPUID names another product than the chain is refused", async () => {
  const c = await makeChain();
  const result = verifySnpReport(report(c.leafKey, { mutate: (b) => b.set([0x19, 0x11], 0x188) }), {
    chain: c.chain,
    ...c.trust,
  });
  assert.deepEqual(result.failed, ["product"]);
});

test("masked chip key and zero signatures are refused at report-signature", async () => {
  const c = await makeChain();
  const masked = verifySnpReport(report(c.leafKey, { keyInfo: 0b10 }), { chain: c.chain, ...c.trust });
  assert.deepEqual(masked.failed, ["report-signature"]);
  assert.match(detail(masked, "report-signature"), /MASK_CHIP_KEY/);
  const zero = report(c.leafKey);
  zero.fill(0, 0x2a0);
  const unsigned = verifySnpReport(zero, { chain: c.chain, ...c.trust });
  assert.match(detail(unsigned, "report-signature"), /all zero/);
});

async function crl(
  c: Awaited<ReturnType<typeof makeChain>>,
  serials: string[],
  opts: { nextUpdate?: Date; key?: webcrypto.CryptoKey } = {},
) {
  const list = await x509.X509CrlGenerator.create({
    issuer: c.arkCert.subject,
    thisUpdate: NOT_BEFORE,
    nextUpdate: opts.nextUpdate ?? NOT_AFTER,
    entries: serials.map((serialNumber) => ({ serialNumber, revocationDate: NOT_BEFORE })),
    signingKey: opts.key ?? c.ark.privateKey,
    signingAlgorithm: PSS,
  });
  return new Uint8Array(list.rawData);
}

test("CRL: signed by the ARK and not listing the chain passes; a revoked VCEK or ASK fails", async () => {
  const c = await makeChain();
  const bytes = report(c.leafKey);
  const clean = verifySnpReport(bytes, { chain: c.chain, ...c.trust, crl: await crl(c, ["0999"]) });
  assert.equal(clean.ok, true, detail(clean, "crl"));
  const revokedLeaf = verifySnpReport(bytes, { chain: c.chain, ...c.trust, crl: await crl(c, ["0a0b0c"]) });
  assert.deepEqual(revokedLeaf.failed, ["crl"]);
  assert.match(detail(revokedLeaf, "crl"), /SEV-VCEK \(serial 0a0b0c\) is revoked/);
  const revokedAsk = verifySnpReport(bytes, { chain: c.chain, ...c.trust, crl: await crl(c, ["010001"]) });
  assert.match(detail(revokedAsk, "crl"), /SEV-Milan .* is revoked/);
  // PEM works too.
  const pem = `-----BEGIN X509 CRL-----\n${Buffer.from(await crl(c, [])).toString("base64")}\n-----END X509 CRL-----\n`;
  assert.equal(verifySnpReport(bytes, { chain: c.chain, ...c.trust, crl: pem }).ok, true);
});

test("CRL: a forged, stale or unreadable CRL fails the crl check", async () => {
  const c = await makeChain();
  const bytes = report(c.leafKey);
  const stranger = (await keys())[2]!;
  const forged = verifySnpReport(bytes, {
    chain: c.chain,
    ...c.trust,
    crl: await crl(c, [], { key: stranger.privateKey }),
  });
  assert.match(detail(forged, "crl"), /does not verify under ARK-Milan/);
  const stale = verifySnpReport(bytes, {
    chain: c.chain,
    ...c.trust,
    crl: await crl(c, [], { nextUpdate: new Date("2025-01-01") }),
  });
  assert.match(detail(stale, "crl"), /stale/);
  const junk = verifySnpReport(bytes, {
    chain: c.chain,
    ...c.trust,
    crl: new Uint8Array([0x30, 0x03, 1, 2, 3]),
  });
  assert.equal(junk.failed.includes("crl"), true);
  // Same key, other name: the CRL's issuer must be this ARK.
  const otherIssuer = await makeChain({ product: "Turin" });
  const wrong = verifySnpReport(bytes, { chain: c.chain, ...c.trust, crl: await crl(otherIssuer, []) });
  assert.match(detail(wrong, "crl"), /not issued by ARK-Milan/);
});

test("fields edited after parsing do not fool verification: it decodes the signed bytes", (t) => {
  if (!HAVE_VECTORS) return t.skip("no vectors");
  const v = vector("virtee-milan");
  const edited = { ...parseSnpReport(v.bytes), measurement: "00".repeat(48) };
  const result = verifySnpReport(edited, { chain: v.chain, now: NOW, expectedMeasurement: "00".repeat(48) });
  assert.deepEqual(result.failed, ["measurement"]);
  assert.equal(result.report.measurement, parseSnpReport(v.bytes).measurement);
});

test("a hwID of the wrong length never matches", async () => {
  const c = await makeChain({ hwID: CHIP_ID.subarray(0, 4) });
  const result = verifySnpReport(report(c.leafKey), { chain: c.chain, ...c.trust });
  assert.deepEqual(result.failed, ["chip-id"]);
  assert.match(detail(result, "chip-id"), /4 bytes, not 8 or 64/);
});

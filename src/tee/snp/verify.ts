import { verify } from "node:crypto";
import { toHex } from "../../crypto/index.ts";
import { isAllZero, normaliseHex } from "./bytes.ts";
import { amdExtensions, loadCert, productFromCn, type SnpCert, splitPem } from "./certs.ts";
import { checkCrl } from "./crl.ts";
import { SnpError } from "./errors.ts";
import {
  parseSnpReport,
  SNP_PRODUCTS,
  SNP_SIGNED_LENGTH,
  type SnpProduct,
  type SnpReport,
} from "./report.ts";
import { bundledRoot } from "./roots.ts";

/** Where the VCEK (or VLEK) and AMD's CA certificates come from. */
export interface SnpVerifyOptions {
  /** PEM text with the VCEK or VLEK, the ASK or ASVK and (optionally) the ARK, in any order. */
  chain?: string;
  /** Or each certificate on its own (PEM). */
  vcek?: string;
  ask?: string;
  ark?: string;
  /** The product the report must come from; otherwise the ARK (and CPUID) decide. */
  product?: SnpProduct;
  /** AMD's CRL for the product (PEM "X509 CRL" or DER); without it revocation is not checked. */
  crl?: string | Uint8Array;
  /** Milliseconds since the epoch; certificate validity is only checked when it is given. */
  now?: number;
  /** 64 bytes (hex or bytes) the report's REPORT_DATA must equal. */
  expectedReportData?: string | Uint8Array;
  /** 48 bytes (hex or bytes) the report's MEASUREMENT must equal. */
  expectedMeasurement?: string | Uint8Array;
  /**
   * ARK certificates (PEM) to trust instead of the bundled AMD roots. For tests and for roots AMD
   * publishes after this release; production callers leave it unset.
   */
  trustedRoots?: string[];
}

export type SnpCheckName =
  | "chain-format"
  | "product"
  | "ark-self-signed"
  | "ark-trusted"
  | "ask-signed-by-ark"
  | "vcek-signed-by-ask"
  | "signing-key"
  | "validity"
  | "report-signature"
  | "tcb"
  | "chip-id"
  | "crl"
  | "report-data"
  | "measurement";

export interface SnpCheck {
  name: SnpCheckName;
  ok: boolean;
  /** True when the check did not apply or lacked an input (it then counts as passed). */
  skipped?: boolean;
  detail: string;
}

export interface SnpVerification {
  /** Every check passed (or was skipped). */
  ok: boolean;
  checks: SnpCheck[];
  /** Names of the failed checks, in order. */
  failed: SnpCheckName[];
  report: SnpReport;
  /** The product named by the ARK, when the chain could be read. */
  product?: SnpProduct;
}

interface Chain {
  leaf: SnpCert;
  ask: SnpCert;
  ark: SnpCert;
  /** True when the ARK was not given and the bundled one was used. */
  arkBundled: boolean;
}

function selfIssued(cert: SnpCert): boolean {
  return cert.x509.subject === cert.x509.issuer;
}

/** Sorts the given certificates into leaf, intermediate and root by their keys and names. */
function readChain(options: SnpVerifyOptions): Chain {
  const certs: SnpCert[] = [];
  if (options.chain !== undefined) {
    splitPem(options.chain, "chain").forEach((der, i) => {
      certs.push(loadCert(der, `chain certificate ${i + 1}`));
    });
  }
  for (const key of ["vcek", "ask", "ark"] as const) {
    const pem = options[key];
    if (pem === undefined) continue;
    const ders = splitPem(pem, key.toUpperCase());
    if (ders.length !== 1)
      throw new SnpError("bad-chain", `${key.toUpperCase()} must hold exactly one certificate`);
    certs.push(loadCert(ders[0]!, key.toUpperCase()));
  }
  if (certs.length === 0)
    throw new SnpError("bad-chain", "no certificates given: pass a chain or a VCEK and ASK");
  const leaves = certs.filter((c) => c.keyType === "ec");
  const roots = certs.filter((c) => c.keyType === "rsa" && selfIssued(c));
  const middles = certs.filter((c) => c.keyType === "rsa" && !selfIssued(c));
  const other = certs.filter((c) => c.keyType === "other");
  if (other.length > 0)
    throw new SnpError(
      "bad-chain",
      `${other[0]!.subjectCn || "a certificate"} has neither an EC nor an RSA key`,
    );
  if (leaves.length !== 1) {
    throw new SnpError("bad-chain", `expected one VCEK or VLEK (EC key), found ${leaves.length}`);
  }
  if (middles.length !== 1) {
    throw new SnpError(
      "bad-chain",
      `expected one ASK or ASVK (RSA, issued by the ARK), found ${middles.length}`,
    );
  }
  if (roots.length > 1) throw new SnpError("bad-chain", `expected at most one ARK, found ${roots.length}`);
  const ask = middles[0]!;
  let ark = roots[0];
  let arkBundled = false;
  if (!ark) {
    const product = productFromCn(ask.issuerCn);
    if (!product)
      throw new SnpError("bad-chain", `no ARK given, and ${ask.subjectCn}'s issuer names no known product`);
    ark = bundledRoot(product);
    arkBundled = true;
  }
  return { leaf: leaves[0]!, ask, ark, arkBundled };
}

function expectedHex(value: string | Uint8Array, length: number, what: string): string {
  const hex =
    value instanceof Uint8Array
      ? value.length === length
        ? toHex(value)
        : undefined
      : normaliseHex(value, length);
  if (!hex)
    throw new SnpError(
      "bad-input",
      `the expected ${what} must be ${length} bytes (${length * 2} hex digits)`,
    );
  return hex;
}

function signatureCheck(report: SnpReport, leaf: SnpCert): { ok: boolean; detail: string } {
  if (report.maskChipKey)
    return { ok: false, detail: "MASK_CHIP_KEY is set: the firmware did not sign this report" };
  const curve = leaf.publicKey.asymmetricKeyDetails?.namedCurve;
  if (curve !== "secp384r1")
    return { ok: false, detail: `${leaf.subjectCn}'s key is on ${curve}, not P-384` };
  const sig = report.bytes.subarray(SNP_SIGNED_LENGTH, SNP_SIGNED_LENGTH + 144);
  const r = sig.subarray(0, 72);
  const s = sig.subarray(72, 144);
  if (isAllZero(sig)) return { ok: false, detail: "the report's signature is all zero (unsigned report)" };
  if (!isAllZero(r.subarray(48)) || !isAllZero(s.subarray(48))) {
    return { ok: false, detail: "a signature component is wider than 48 bytes" };
  }
  // The report stores R and S little-endian; ieee-p1363 wants them big-endian, R then S.
  const p1363 = Buffer.concat([
    Buffer.from(r.subarray(0, 48)).reverse(),
    Buffer.from(s.subarray(0, 48)).reverse(),
  ]);
  const ok = verify(
    "sha384",
    report.bytes.subarray(0, SNP_SIGNED_LENGTH),
    { key: leaf.publicKey, dsaEncoding: "ieee-p1363" },
    p1363,
  );
  return ok
    ? { ok, detail: `ECDSA P-384/SHA-384 over bytes [0, 0x2A0) verifies under ${leaf.subjectCn}` }
    : {
        ok,
        detail: `the report's signature does not verify under ${leaf.subjectCn}'s key (report altered or wrong VCEK)`,
      };
}

function tcbCheck(report: SnpReport, leaf: SnpCert): { ok: boolean; detail: string } {
  let ext: ReturnType<typeof amdExtensions>;
  try {
    ext = amdExtensions(leaf);
  } catch (e) {
    return { ok: false, detail: (e as Error).message };
  }
  const tcb = report.reportedTcb;
  const pairs: [string, number | undefined, number][] = [
    ["blSPL", ext.blSPL, tcb.bootloader],
    ["teeSPL", ext.teeSPL, tcb.tee],
    ["snpSPL", ext.snpSPL, tcb.snp],
    ["ucodeSPL", ext.ucodeSPL, tcb.microcode],
  ];
  if (tcb.fmc !== undefined) pairs.push(["fmcSPL", ext.fmcSPL, tcb.fmc]);
  const wrong = pairs.filter(([, cert, rep]) => cert !== rep);
  if (wrong.length > 0) {
    return {
      ok: false,
      detail: `${leaf.subjectCn} certifies a different TCB than REPORTED_TCB: ${wrong
        .map(([name, cert, rep]) => `${name} ${cert ?? "missing"} vs report ${rep}`)
        .join(", ")}`,
    };
  }
  return {
    ok: true,
    detail: `${pairs.map(([n, v]) => `${n}=${v}`).join(" ")} match REPORTED_TCB ${tcb.hex}`,
  };
}

function chipIdCheck(report: SnpReport, leaf: SnpCert, isVlek: boolean): SnpCheck {
  const name = "chip-id" as const;
  if (isVlek) return { name, ok: true, skipped: true, detail: "a VLEK names a cloud provider, not a chip" };
  if (report.chipIdMasked) return { name, ok: true, skipped: true, detail: "CHIP_ID is masked (all zero)" };
  let hwID: string | undefined;
  try {
    hwID = amdExtensions(leaf).hwID;
  } catch (e) {
    return { name, ok: false, detail: (e as Error).message };
  }
  if (hwID === undefined)
    return { name, ok: true, skipped: true, detail: `${leaf.subjectCn} has no hwID extension` };
  if (hwID.length !== 16 && hwID.length !== 128) {
    return { name, ok: false, detail: `the VCEK's hwID is ${hwID.length / 2} bytes, not 8 or 64` };
  }
  // Turin VCEKs name the chip by the first 8 bytes of CHIP_ID.
  const reported = report.chipId.slice(0, hwID.length);
  return hwID === reported
    ? { name, ok: true, detail: "the VCEK's hwID equals CHIP_ID" }
    : {
        name,
        ok: false,
        detail: `the VCEK's hwID ${hwID.slice(0, 16)}... differs from CHIP_ID ${report.chipId.slice(0, 16)}...`,
      };
}

function productCheck(
  report: SnpReport,
  chain: Chain,
  options: SnpVerifyOptions,
): SnpCheck & { product?: SnpProduct } {
  const name = "product" as const;
  const product = productFromCn(chain.ark.subjectCn);
  if (!product)
    return {
      name,
      ok: false,
      detail: `the ARK's CN ${JSON.stringify(chain.ark.subjectCn)} names no known product (${SNP_PRODUCTS.join(", ")})`,
    };
  const fail = (detail: string) => ({ name, ok: false, detail, product });
  if (options.product && options.product !== product) {
    return fail(`the chain is for ${product}, but ${options.product} was required`);
  }
  if (productFromCn(chain.ask.subjectCn) !== product) {
    return fail(`the intermediate ${chain.ask.subjectCn} is not a ${product} certificate`);
  }
  const productName = (() => {
    try {
      return amdExtensions(chain.leaf).productName;
    } catch {
      return undefined;
    }
  })();
  if (productName !== undefined && !productName.startsWith(product)) {
    return fail(`${chain.leaf.subjectCn} is for product ${productName}, the chain for ${product}`);
  }
  if (report.cpuid) {
    const { family, model } = report.cpuid;
    const cpu = `CPUID family 0x${family.toString(16)} model 0x${model.toString(16)}`;
    if (!report.cpuidProduct) return fail(`${cpu} is not a known product`);
    if (report.cpuidProduct !== product)
      return fail(`the report's ${cpu} is ${report.cpuidProduct}, the chain is for ${product}`);
    return { name, ok: true, detail: `${product}: ARK ${chain.ark.subjectCn} and ${cpu} agree`, product };
  }
  return {
    name,
    ok: true,
    detail: `${product}, from ARK ${chain.ark.subjectCn} (a v${report.version} report has no CPUID)`,
    product,
  };
}

/**
 * Verifies an SNP report against its VCEK (or VLEK) chain and AMD's bundled roots. Never throws
 * for a bad chain or signature: each check is listed with its outcome. Throws SnpError only when
 * the report bytes themselves are unreadable or an expected value is malformed.
 */
export function verifySnpReport(input: SnpReport | Uint8Array, options: SnpVerifyOptions): SnpVerification {
  // Always decode from the bytes: every field checked below is then the signed one, even if the
  // caller passes a report object whose fields were edited after parsing.
  const report = parseSnpReport(input instanceof Uint8Array ? input : input.bytes);
  const expectedData =
    options.expectedReportData === undefined
      ? undefined
      : expectedHex(options.expectedReportData, 64, "report data");
  const expectedMeasurement =
    options.expectedMeasurement === undefined
      ? undefined
      : expectedHex(options.expectedMeasurement, 48, "measurement");
  const checks: SnpCheck[] = [];
  const add = (name: SnpCheckName, ok: boolean, detail: string, skipped?: boolean) => {
    checks.push(skipped ? { name, ok, skipped, detail } : { name, ok, detail });
  };
  let product: SnpProduct | undefined;

  let chain: Chain | undefined;
  try {
    chain = readChain(options);
    add(
      "chain-format",
      true,
      `${chain.leaf.subjectCn} <- ${chain.ask.subjectCn} <- ${chain.ark.subjectCn}${chain.arkBundled ? " (bundled)" : ""}`,
    );
  } catch (e) {
    if (!(e instanceof SnpError)) throw e;
    add("chain-format", false, e.message);
  }

  if (chain) {
    const { leaf, ask, ark } = chain;
    const pc = productCheck(report, chain, options);
    product = pc.product;
    add("product", pc.ok, pc.detail);

    add(
      "ark-self-signed",
      ark.x509.checkIssued(ark.x509) && ark.x509.verify(ark.publicKey),
      `${ark.subjectCn} ${ark.x509.verify(ark.publicKey) ? "is" : "is not"} self-signed`,
    );

    const trusted = options.trustedRoots
      ? options.trustedRoots.flatMap((pem, i) =>
          splitPem(pem, `trusted root ${i + 1}`).map((d) => loadCert(d, `trusted root ${i + 1}`)),
        )
      : product
        ? [bundledRoot(product)]
        : [];
    const match = trusted.find((root) => root.fingerprint === ark.fingerprint);
    add(
      "ark-trusted",
      match !== undefined,
      match
        ? `${ark.subjectCn} is the ${options.trustedRoots ? "configured" : "bundled AMD"} root (SHA-256 ${ark.fingerprint})`
        : `${ark.subjectCn} (SHA-256 ${ark.fingerprint}) is not ${product ? `AMD's ${product} root` : "a known AMD root"}`,
    );

    const askOk = ask.x509.checkIssued(ark.x509) && ask.x509.verify(ark.publicKey);
    add("ask-signed-by-ark", askOk, `${ask.subjectCn} ${askOk ? "is" : "is not"} signed by ${ark.subjectCn}`);
    const leafOk = leaf.x509.checkIssued(ask.x509) && leaf.x509.verify(ask.publicKey);
    add(
      "vcek-signed-by-ask",
      leafOk,
      `${leaf.subjectCn} ${leafOk ? "is" : "is not"} signed by ${ask.subjectCn}`,
    );

    // VCEK reports chain through the ASK (SEV-<product>); VLEK reports through the ASVK
    // (SEV-VLEK-<product>), and the certificate must be of the kind the report names.
    const intermediateIsAsvk = ask.subjectCn.startsWith("SEV-VLEK-");
    const leafIsVlek = leaf.subjectCn.includes("VLEK");
    let keyOk: boolean;
    let keyDetail: string;
    if (report.signingKey === "vcek" || report.signingKey === "vlek") {
      const wantVlek = report.signingKey === "vlek";
      keyOk = wantVlek === intermediateIsAsvk && wantVlek === leafIsVlek;
      keyDetail = keyOk
        ? `signed with the ${wantVlek ? "VLEK, certified by the ASVK" : "VCEK, certified by the ASK"}`
        : `the report says ${wantVlek ? "VLEK" : "VCEK"}, but the chain has ${leaf.subjectCn} under ${ask.subjectCn}`;
    } else {
      keyOk = false;
      keyDetail = `SIGNING_KEY is ${report.signingKeyRaw} (${report.signingKey}): no key signed this report`;
    }
    add("signing-key", keyOk, keyDetail);

    if (options.now === undefined) {
      add("validity", true, "not checked: no time given", true);
    } else {
      const now = options.now;
      const bad = [leaf, ask, ark].filter(
        (c) => now < Date.parse(c.x509.validFrom) || now > Date.parse(c.x509.validTo),
      );
      add(
        "validity",
        bad.length === 0,
        bad.length === 0
          ? `all certificates valid at ${new Date(now).toISOString()}`
          : bad.map((c) => `${c.subjectCn} is valid ${c.x509.validFrom} to ${c.x509.validTo}`).join("; "),
      );
    }

    const sig = signatureCheck(report, leaf);
    add("report-signature", sig.ok, sig.detail);
    const tcb = tcbCheck(report, leaf);
    add("tcb", tcb.ok, tcb.detail);
    checks.push(chipIdCheck(report, leaf, report.signingKey === "vlek"));

    if (options.crl === undefined) add("crl", true, "not checked: no CRL given", true);
    else {
      const crl = checkCrl(options.crl, ark, [ask, leaf], options.now);
      add("crl", crl.ok, crl.detail);
    }
  }

  if (expectedData !== undefined) {
    const ok = report.reportData === expectedData;
    add(
      "report-data",
      ok,
      ok ? "REPORT_DATA is as expected" : `REPORT_DATA is ${report.reportData}, expected ${expectedData}`,
    );
  }
  if (expectedMeasurement !== undefined) {
    const ok = report.measurement === expectedMeasurement;
    add(
      "measurement",
      ok,
      ok
        ? "MEASUREMENT is as expected"
        : `MEASUREMENT is ${report.measurement}, expected ${expectedMeasurement}`,
    );
  }

  const failed = checks.filter((c) => !c.ok).map((c) => c.name);
  const result: SnpVerification = { ok: failed.length === 0, checks, failed, report };
  if (product) result.product = product;
  return result;
}

// A fake AMD: an ARK, an ASK and a VCEK made here (RSA-PSS chain, AMD's VCEK extensions), and a
// stand-in for the secure processor that signs reports with that VCEK. Trusted only where a test
// passes `arkPem` as a trusted root in-process; AMD's bundled roots refuse it. `makeFakeChain`
// also makes the variants verification must tell apart (VLEK, Turin, other TCBs and chips).
import "reflect-metadata";
import { generateKeyPairSync, type KeyObject, webcrypto } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as x509 from "@peculiar/x509";
import { CHIP_ID } from "./fake-report.ts";

x509.cryptoProvider.set(webcrypto as ReturnType<typeof x509.cryptoProvider.get>);

export const PSS = { name: "RSA-PSS", hash: "SHA-384", saltLength: 48 } as const;
export const NOT_BEFORE = new Date("2024-01-01T00:00:00Z");
export const NOT_AFTER = new Date("2034-01-01T00:00:00Z");
const AMD_OID = "1.3.6.1.4.1.3704.1";

export interface FakeAmd {
  /** The fake root: pass it as `trustedRoots` to accept reports this fake AMD signs. */
  arkPem: string;
  /** VCEK, ASK and ARK as one PEM text (what a node sends as its endorsements). */
  chainPem: string;
  vcekKeyPem: string;
}

export type RsaPssKeys = Awaited<ReturnType<typeof rsaPssKeys>>;

export async function rsaPssKeys() {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return {
    privateKey: await webcrypto.subtle.importKey(
      "pkcs8",
      privateKey.export({ type: "pkcs8", format: "der" }),
      PSS,
      false,
      ["sign"],
    ),
    publicKey: await webcrypto.subtle.importKey(
      "spki",
      publicKey.export({ type: "spki", format: "der" }),
      PSS,
      true,
      ["verify"],
    ),
  };
}

const derInteger = (n: number) => (n < 0x80 ? Uint8Array.of(2, 1, n) : Uint8Array.of(2, 2, 0, n));
const derOctets = (bytes: Uint8Array) => Uint8Array.of(4, bytes.length, ...bytes);
const derIa5 = (text: string) => Uint8Array.of(0x16, text.length, ...Buffer.from(text));

export interface FakeChainSpec {
  product?: "Milan" | "Turin";
  /** A VLEK under an ASVK instead of a VCEK under an ASK; a VLEK certifies no chip. */
  vlek?: boolean;
  /** The TCB the leaf certifies; by default the one fake reports of the product carry. */
  spl?: { bl: number; tee: number; snp: number; ucode: number; fmc?: number };
  /** The chip the leaf certifies; by default CHIP_ID (its first 8 bytes on Turin). */
  hwID?: Uint8Array;
  /** ARK and ASK keys to sign with; RSA key generation is slow, so tests making many chains reuse them. */
  keys?: [ark: RsaPssKeys, ask: RsaPssKeys];
}

export interface FakeChain {
  ark: RsaPssKeys;
  arkCert: x509.X509Certificate;
  askCert: x509.X509Certificate;
  leafCert: x509.X509Certificate;
  /** The VCEK's (or VLEK's) private key, which signs reports. */
  leafKey: KeyObject;
}

/** An ARK, an ASK (or ASVK) and a VCEK (or VLEK) with AMD's extensions, as `spec` says. */
export async function makeFakeChain(spec: FakeChainSpec = {}): Promise<FakeChain> {
  const product = spec.product ?? "Milan";
  const turin = product === "Turin";
  const [ark, ask] = spec.keys ?? (await Promise.all([rsaPssKeys(), rsaPssKeys()]));
  const arkCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "010000",
    name: `CN=ARK-${product}`,
    notBefore: NOT_BEFORE,
    notAfter: NOT_AFTER,
    keys: ark,
    signingAlgorithm: PSS,
  });
  const askCert = await x509.X509CertificateGenerator.create({
    serialNumber: "010001",
    subject: spec.vlek ? `CN=SEV-VLEK-${product}` : `CN=SEV-${product}`,
    issuer: arkCert.subject,
    notBefore: NOT_BEFORE,
    notAfter: NOT_AFTER,
    publicKey: ask.publicKey,
    signingKey: ark.privateKey,
    signingAlgorithm: PSS,
  });
  const leaf = generateKeyPairSync("ec", { namedCurve: "P-384" });
  const leafPublic = await webcrypto.subtle.importKey(
    "spki",
    leaf.publicKey.export({ type: "spki", format: "der" }),
    { name: "ECDSA", namedCurve: "P-384" },
    true,
    ["verify"],
  );
  const spl =
    spec.spl ??
    (turin ? { fmc: 3, bl: 5, tee: 1, snp: 9, ucode: 77 } : { bl: 4, tee: 0, snp: 24, ucode: 219 });
  const ext = (oid: string, value: Uint8Array) => new x509.Extension(oid, false, value);
  const extensions = [
    ext(`${AMD_OID}.2`, derIa5(turin ? "Turin-B0" : "Milan-B0")),
    ext(`${AMD_OID}.3.1`, derInteger(spl.bl)),
    ext(`${AMD_OID}.3.2`, derInteger(spl.tee)),
    ext(`${AMD_OID}.3.3`, derInteger(spl.snp)),
    ext(`${AMD_OID}.3.8`, derInteger(spl.ucode)),
  ];
  if (spl.fmc !== undefined) extensions.push(ext(`${AMD_OID}.3.9`, derInteger(spl.fmc)));
  if (!spec.vlek)
    extensions.push(ext(`${AMD_OID}.4`, derOctets(spec.hwID ?? (turin ? CHIP_ID.subarray(0, 8) : CHIP_ID))));
  const leafCert = await x509.X509CertificateGenerator.create({
    serialNumber: "0a0b0c",
    subject: spec.vlek ? "CN=SEV-VLEK" : "CN=SEV-VCEK",
    issuer: askCert.subject,
    notBefore: NOT_BEFORE,
    notAfter: NOT_AFTER,
    publicKey: leafPublic,
    signingKey: ask.privateKey,
    signingAlgorithm: PSS,
    extensions,
  });
  return { ark, arkCert, askCert, leafCert, leafKey: leaf.privateKey };
}

/** A Milan chain whose VCEK certifies the TCB and chip id fake reports carry. */
export async function makeFakeAmd(): Promise<FakeAmd> {
  const c = await makeFakeChain();
  return {
    arkPem: c.arkCert.toString("pem"),
    chainPem: [c.leafCert, c.askCert, c.arkCert].map((cert) => cert.toString("pem")).join("\n"),
    vcekKeyPem: c.leafKey.export({ type: "pkcs8", format: "pem" }).toString(),
  };
}

const SCRIPT = fileURLToPath(new URL("./fake-amd-sp.ts", import.meta.url));

/**
 * Files for a node that attests with the fake AMD through a report command: the chain (its
 * endorsements file) and the argv of a tool that signs a report for whatever report data the
 * node asks, with the given measurement and host data. The caller removes `dir`.
 */
export function fakeSnpNodeFiles(
  amd: FakeAmd,
  guest: { measurement: string; hostData: string; policy?: bigint },
): { dir: string; chainFile: string; command: string[] } {
  const dir = mkdtempSync(join(tmpdir(), "coco-fake-amd-"));
  const chainFile = join(dir, "chain.pem");
  const specFile = join(dir, "guest.json");
  writeFileSync(chainFile, amd.chainPem);
  writeFileSync(
    specFile,
    JSON.stringify({
      vcekKeyPem: amd.vcekKeyPem,
      measurement: guest.measurement,
      hostData: guest.hostData,
      policy: (guest.policy ?? 0x30000n).toString(),
    }),
  );
  const tsx = import.meta.resolve("tsx");
  return {
    dir,
    chainFile,
    command: [process.execPath, "--import", tsx, SCRIPT, specFile, "{report}", "{report-data}"],
  };
}

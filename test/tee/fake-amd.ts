// A fake AMD: an ARK, an ASK and a VCEK made here (RSA-PSS chain, AMD's VCEK extensions), and a
// stand-in for the secure processor that signs reports with that VCEK. Trusted only where a test
// passes `arkPem` as a trusted root in-process; AMD's bundled roots refuse it.
import "reflect-metadata";
import { generateKeyPairSync, webcrypto } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as x509 from "@peculiar/x509";
import { CHIP_ID } from "./fake-report.ts";

x509.cryptoProvider.set(webcrypto as ReturnType<typeof x509.cryptoProvider.get>);

const PSS = { name: "RSA-PSS", hash: "SHA-384", saltLength: 48 } as const;
const NOT_BEFORE = new Date("2024-01-01T00:00:00Z");
const NOT_AFTER = new Date("2034-01-01T00:00:00Z");
const AMD_OID = "1.3.6.1.4.1.3704.1";

export interface FakeAmd {
  /** The fake root: pass it as `trustedRoots` to accept reports this fake AMD signs. */
  arkPem: string;
  /** VCEK, ASK and ARK as one PEM text (what a node sends as its endorsements). */
  chainPem: string;
  vcekKeyPem: string;
}

async function rsaPssKeys() {
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

/** A Milan chain whose VCEK certifies the TCB and chip id fake reports carry. */
export async function makeFakeAmd(): Promise<FakeAmd> {
  const [ark, ask] = await Promise.all([rsaPssKeys(), rsaPssKeys()]);
  const arkCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "010000",
    name: "CN=ARK-Milan",
    notBefore: NOT_BEFORE,
    notAfter: NOT_AFTER,
    keys: ark,
    signingAlgorithm: PSS,
  });
  const askCert = await x509.X509CertificateGenerator.create({
    serialNumber: "010001",
    subject: "CN=SEV-Milan",
    issuer: arkCert.subject,
    notBefore: NOT_BEFORE,
    notAfter: NOT_AFTER,
    publicKey: ask.publicKey,
    signingKey: ark.privateKey,
    signingAlgorithm: PSS,
  });
  const vcek = generateKeyPairSync("ec", { namedCurve: "P-384" });
  const vcekPublic = await webcrypto.subtle.importKey(
    "spki",
    vcek.publicKey.export({ type: "spki", format: "der" }),
    { name: "ECDSA", namedCurve: "P-384" },
    true,
    ["verify"],
  );
  const ext = (oid: string, value: Uint8Array) => new x509.Extension(oid, false, value);
  const vcekCert = await x509.X509CertificateGenerator.create({
    serialNumber: "0a0b0c",
    subject: "CN=SEV-VCEK",
    issuer: askCert.subject,
    notBefore: NOT_BEFORE,
    notAfter: NOT_AFTER,
    publicKey: vcekPublic,
    signingKey: ask.privateKey,
    signingAlgorithm: PSS,
    extensions: [
      ext(`${AMD_OID}.2`, derIa5("Milan-B0")),
      ext(`${AMD_OID}.3.1`, derInteger(4)),
      ext(`${AMD_OID}.3.2`, derInteger(0)),
      ext(`${AMD_OID}.3.3`, derInteger(24)),
      ext(`${AMD_OID}.3.8`, derInteger(219)),
      ext(`${AMD_OID}.4`, derOctets(CHIP_ID)),
    ],
  });
  return {
    arkPem: arkCert.toString("pem"),
    chainPem: [vcekCert, askCert, arkCert].map((c) => c.toString("pem")).join("\n"),
    vcekKeyPem: vcek.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
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

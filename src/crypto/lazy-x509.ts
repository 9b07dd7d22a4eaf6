/**
 * The X.509 libraries, loaded on first use. @peculiar/x509 with its Reflect polyfill and ASN.1
 * schemas costs about 0.4 s of CPU to load, which every importer of src/crypto used to pay,
 * including `coco gov` calls that never build a certificate. Reading and fingerprinting
 * certificates uses node:crypto's X509Certificate; these load only where certificates are
 * built, renewed or their names compared (a node's start, governance's renewals).
 *
 * They load synchronously (through require: all four publish CommonJS builds, the same module
 * instances an `import` would give) because some callers are synchronous: renewals run inside
 * QuickJS host functions.
 */
import { webcrypto } from "node:crypto";
import { createRequire } from "node:module";
import type * as Csr from "@peculiar/asn1-csr";
import type * as Schema from "@peculiar/asn1-schema";
import type * as Asn1X509 from "@peculiar/asn1-x509";
import type * as X509 from "@peculiar/x509";

const requireCjs = createRequire(import.meta.url);

let x509Module: typeof X509 | undefined;
let asn1Modules: { csr: typeof Csr; schema: typeof Schema; x509: typeof Asn1X509 } | undefined;

/** @peculiar/x509, set up to sign through Node's WebCrypto. */
export function x509(): typeof X509 {
  if (!x509Module) {
    // tsyringe, under @peculiar/x509, needs the Reflect metadata polyfill in place first.
    requireCjs("reflect-metadata");
    const loaded = requireCjs("@peculiar/x509") as typeof X509;
    loaded.cryptoProvider.set(webcrypto as ReturnType<typeof loaded.cryptoProvider.get>);
    x509Module = loaded;
  }
  return x509Module;
}

/** The ASN.1 structures of certificates and certificate signing requests. */
export function asn1(): { csr: typeof Csr; schema: typeof Schema; x509: typeof Asn1X509 } {
  asn1Modules ??= {
    csr: requireCjs("@peculiar/asn1-csr") as typeof Csr,
    schema: requireCjs("@peculiar/asn1-schema") as typeof Schema,
    x509: requireCjs("@peculiar/asn1-x509") as typeof Asn1X509,
  };
  return asn1Modules;
}

/** Loads both now, e.g. while a process waits anyway, so the first certificate is not delayed. */
export function preloadCertificateLibraries(): void {
  x509();
  asn1();
}

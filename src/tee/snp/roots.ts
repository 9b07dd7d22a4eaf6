import { readFileSync } from "node:fs";
import { loadPemCert, type SnpCert } from "./certs.ts";
import { SnpError } from "./errors.ts";
import { SNP_PRODUCTS, type SnpProduct } from "./report.ts";

/**
 * AMD's root keys (ARKs), one per product, as AMD's Key Distribution Service serves them at
 * /vcek/v1/{product}/cert_chain. They ship with Coco so that a report is checked against roots
 * fixed at build time, never against whatever chain arrives with it.
 */
const FILES: Record<SnpProduct, string> = {
  Milan: "milan-ark.pem",
  Genoa: "genoa-ark.pem",
  Turin: "turin-ark.pem",
};

const cache = new Map<SnpProduct, SnpCert>();

function rootCert(product: SnpProduct): SnpCert {
  let cert = cache.get(product);
  if (!cert) {
    const pem = readFileSync(new URL(`./roots/${FILES[product]}`, import.meta.url), "utf8");
    cert = loadPemCert(pem, `bundled ${product} ARK`);
    cache.set(product, cert);
  }
  return cert;
}

/** The bundled ARK certificate (PEM) for a product. */
export function amdRootFor(product: SnpProduct): string {
  if (!SNP_PRODUCTS.includes(product)) {
    throw new SnpError("unknown-product", `no AMD root for product ${JSON.stringify(product)}`);
  }
  return rootCert(product).pem;
}

/** The bundled ARK as a parsed certificate (internal). */
export function bundledRoot(product: SnpProduct): SnpCert {
  amdRootFor(product);
  return rootCert(product);
}

import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { publicKeyDer, sha256, toHex } from "../crypto/index.ts";

/**
 * The virtual platform: attestation for development, with no hardware behind it. The
 * "measurement" is a digest of the node's code, and the report binds the node's public key, but
 * nothing stops a host from forging either. It is plainly marked insecure wherever it appears.
 */
export interface VirtualAttestation {
  format: "virtual";
  /** Hex SHA-256 over the node's source files (paths and contents). */
  measurement: string;
  /** Hex SHA-256 of the node's public key (SubjectPublicKeyInfo DER). */
  report_data: string;
}

const SRC = fileURLToPath(new URL("..", import.meta.url));
/**
 * The code this node runs: the TypeScript under src/ (development, tests), or the JavaScript
 * compiled from it under dist/ (`coco` and `npm start`), whichever this module was loaded from.
 * So nodes of one network must run the same build; a mixed network refuses the odd one out.
 */
const CODE_EXTENSION = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
let cached: string | undefined;

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (name.endsWith(CODE_EXTENSION)) out.push(path);
  }
  return out;
}

/** The measurement of the code this node runs: every code file under src/ (or dist/), in a fixed order. */
export function codeMeasurement(): string {
  if (cached) return cached;
  const parts: Uint8Array[] = [];
  for (const file of sourceFiles(SRC)) {
    parts.push(new TextEncoder().encode(`${relative(SRC, file)}\n`), sha256(readFileSync(file)));
  }
  cached = toHex(sha256(...parts));
  return cached;
}

export function virtualAttestation(nodePublicKeyPem: string): VirtualAttestation {
  return {
    format: "virtual",
    measurement: codeMeasurement(),
    report_data: toHex(sha256(publicKeyDer(nodePublicKeyPem))),
  };
}

/** Checks a joiner's virtual attestation: its format, key binding and measurement. */
export function verifyVirtualAttestation(
  attestation: unknown,
  nodePublicKeyPem: string,
  allowedMeasurements: string[],
): { ok: true; measurement: string } | { ok: false; reason: string } {
  if (typeof attestation !== "object" || attestation === null) {
    return { ok: false, reason: "attestation must be an object" };
  }
  const a = attestation as Partial<VirtualAttestation>;
  if (a.format !== "virtual")
    return { ok: false, reason: `unsupported attestation format ${JSON.stringify(a.format)}` };
  if (typeof a.measurement !== "string" || !/^[0-9a-f]{64}$/.test(a.measurement)) {
    return { ok: false, reason: "measurement must be 64 lower-case hex digits" };
  }
  const expected = toHex(sha256(publicKeyDer(nodePublicKeyPem)));
  if (a.report_data !== expected) {
    return { ok: false, reason: "report data does not bind the joining node's public key" };
  }
  if (!allowedMeasurements.includes(a.measurement)) {
    return {
      ok: false,
      reason: `measurement ${a.measurement} is not among the allowed virtual measurements`,
    };
  }
  return { ok: true, measurement: a.measurement };
}

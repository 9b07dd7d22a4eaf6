import { closeSync, fsyncSync, openSync, renameSync, writeSync } from "node:fs";
import { open, rename } from "node:fs/promises";
import { dirname, join } from "node:path";
import {
  createCertificateRequest,
  createServiceIdentity,
  curveOf,
  generateEcKeyPair,
  issueNodeCertificate,
  type KeyPairPem,
  nodeIdOf,
  publicKeyDer,
  type ServiceCurve,
  sha256,
} from "../crypto/index.ts";
import type { Environment } from "./env.ts";

/** Secrets a node keeps across restarts. Only ever on disk sealed. */
export interface NodeIdentity {
  nodeId: string;
  nodePrivateKeyPem: string;
  nodeCertPem: string;
  /** The node's certificate signing request (absent for identities made before it was kept). */
  nodeCsrPem?: string;
  servicePrivateKeyPem: string;
  serviceCertPem: string;
  ledgerSecrets: Array<{ version: number; key: string /* base64 */ }>;
}

export class IdentityError extends Error {}

/** Writes a file so that a crash leaves either the old or the new content, never a mix. */
export function writeFileAtomic(path: string, data: Uint8Array | string, mode = 0o600): void {
  // Per process: nodes sharing a directory (a sandbox) may write the same file at once.
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, "w", mode);
  try {
    writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  syncDir(dirname(path));
}

/** fsync a directory, so a rename or unlink in it is durable. */
export function syncDir(dir: string): void {
  const dirFd = openSync(dir, "r");
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

/**
 * writeFileAtomic on the thread pool: for files written while the node serves (the commit hint),
 * where two synchronous fsyncs would stall the event loop for milliseconds. Callers must not
 * run two at once for the same path (they share the temporary file).
 */
export async function writeFileAtomicAsync(path: string, data: string, mode = 0o600): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  const file = await open(tmp, "w", mode);
  try {
    await file.writeFile(data);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(tmp, path);
  const dir = await open(join(path, ".."), "r");
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/**
 * The names a node certificate carries: 127.0.0.1 and localhost, and the host the node serves
 * RPC on (an IP address or a DNS name; brackets around an IPv6 address are dropped).
 */
export function hostAltNames(host: string): { ips: string[]; dns: string[] } {
  const bare = host.replace(/^\[|\]$/g, "");
  const isIp = /^[0-9.]+$/.test(bare) || bare.includes(":");
  return {
    ips: [...new Set(["127.0.0.1", ...(isIp ? [bare] : [])])],
    dns: [...new Set(["localhost", ...(isIp ? [] : [bare])])],
  };
}

/**
 * A new node key, on the service's curve, with its certificate signing request (kept so
 * governance can renew the cert).
 */
export async function newNodeKey(
  rpcHost: string,
  curve: ServiceCurve = "secp384r1",
): Promise<KeyPairPem & { csrPem: string }> {
  const key = generateEcKeyPair(curve);
  const csrPem = await createCertificateRequest({
    privateKeyPem: key.privateKeyPem,
    altNames: hostAltNames(rpcHost),
  });
  return { ...key, csrPem };
}

/**
 * First start: a new service identity on `curve` (P-384 by default), a node key endorsed by it,
 * and the first ledger secret.
 */
export async function createIdentity(
  env: Environment,
  rpcHost: string,
  curve: ServiceCurve = "secp384r1",
): Promise<NodeIdentity> {
  const now = new Date(env.now());
  const service = await createServiceIdentity({ now, serial: env.randomBytes(16), curve });
  const node = await newNodeKey(rpcHost, curve);
  const nodeCertPem = await issueNodeCertificate({
    service: { certPem: service.certPem, privateKeyPem: service.privateKeyPem },
    nodePublicKeyPem: node.publicKeyPem,
    altNames: hostAltNames(rpcHost),
    now,
    serial: env.randomBytes(16),
  });
  return {
    nodeId: nodeIdOf(node.publicKeyPem),
    nodePrivateKeyPem: node.privateKeyPem,
    nodeCertPem,
    nodeCsrPem: node.csrPem,
    servicePrivateKeyPem: service.privateKeyPem,
    serviceCertPem: service.certPem,
    ledgerSecrets: [{ version: 0, key: Buffer.from(env.randomBytes(32)).toString("base64") }],
  };
}

/** The curve a service's keys are on, read from its certificate (a joiner's node key follows it). */
export function serviceCurveOf(serviceCertPem: string): ServiceCurve {
  return curveOf(serviceCertPem);
}

/** COSE `kid` for the service key: SHA-256 of its public key DER. */
export function serviceKid(serviceCertPem: string): Uint8Array {
  return sha256(publicKeyDer(serviceCertPem));
}

/** Adds ledger secrets this identity does not hold yet (a recovery restores the old ones). */
export function addLedgerSecrets(
  identity: NodeIdentity,
  secrets: Array<{ version: number; key: Uint8Array }>,
): void {
  for (const secret of secrets) {
    if (identity.ledgerSecrets.some((s) => s.version === secret.version)) continue;
    identity.ledgerSecrets.push({ version: secret.version, key: Buffer.from(secret.key).toString("base64") });
  }
  identity.ledgerSecrets.sort((a, b) => a.version - b.version);
}

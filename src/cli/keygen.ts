import { generateKeyPair } from "node:crypto";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { certFingerprint, createIdentityCertificate } from "../crypto/index.ts";
import { CliError } from "./fail.ts";

const NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Writes `<name>_cert.pem` and `<name>_privk.pem` (mode 0600); refuses to overwrite. */
export async function keygen(
  role: string,
  name: string,
  dir: string,
): Promise<{ cert: string; key: string; id: string }> {
  if (role !== "member" && role !== "user") throw new CliError(`role must be member or user, got ${role}`);
  if (!NAME.test(name)) throw new CliError("name must be 1-64 letters, digits, '_' or '-'");
  const cert = join(dir, `${name}_cert.pem`);
  const key = join(dir, `${name}_privk.pem`);
  for (const path of [cert, key]) {
    if (existsSync(path)) throw new CliError(`${path} already exists; not overwriting it`);
  }
  const identity = await createIdentityCertificate({
    name,
    now: new Date(),
    serial: crypto.getRandomValues(new Uint8Array(16)),
  });
  writeFileSync(key, identity.privateKeyPem, { mode: 0o600, flag: "wx" });
  writeFileSync(cert, identity.certPem, { mode: 0o644, flag: "wx" });
  return { cert, key, id: certFingerprint(identity.certPem) };
}

/**
 * Writes `<name>_enc_pubk.pem` and `<name>_enc_privk.pem` (mode 0600): the RSA key a recovery
 * member's share is encrypted to. The private key never leaves the member. The key is generated
 * on a worker thread (RSA-3072 takes 0.2 s to over a second), so the sandbox makes its other
 * keys and starts its nodes meanwhile.
 */
export async function encryptionKeygen(
  name: string,
  dir: string,
): Promise<{ publicKey: string; privateKey: string }> {
  if (!NAME.test(name)) throw new CliError("name must be 1-64 letters, digits, '_' or '-'");
  const publicKey = join(dir, `${name}_enc_pubk.pem`);
  const privateKey = join(dir, `${name}_enc_privk.pem`);
  for (const path of [publicKey, privateKey]) {
    if (existsSync(path)) throw new CliError(`${path} already exists; not overwriting it`);
  }
  const pair = await promisify(generateKeyPair)("rsa", {
    modulusLength: 3072,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
  });
  writeFileSync(privateKey, pair.privateKey, { mode: 0o600, flag: "wx" });
  writeFileSync(publicKey, pair.publicKey, { mode: 0o644, flag: "wx" });
  return { publicKey, privateKey };
}

import { readFileSync } from "node:fs";
import { type VerifyResult, verifyCoseReceipt, verifyJsonReceipt } from "../crypto/index.ts";
import { CliError } from "./fail.ts";

function readFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new CliError(`cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

/** Verifies a JSON or COSE receipt offline against the service certificate. */
export function verifyReceiptFile(receiptPath: string, serviceCertPath: string): VerifyResult {
  const bytes = readFile(receiptPath, "receipt");
  const serviceCert = readFile(serviceCertPath, "service certificate").toString("utf8");
  const first = bytes.subarray(0, 1).toString();
  if (first === "{" || first === " " || first === "\n") {
    let json: unknown;
    try {
      json = JSON.parse(bytes.toString("utf8"));
    } catch (e) {
      return { ok: false, check: "format", message: `receipt is not valid JSON: ${(e as Error).message}` };
    }
    return verifyJsonReceipt(json, serviceCert);
  }
  return verifyCoseReceipt(new Uint8Array(bytes), serviceCert);
}

import { RecoveryError } from "./errors.ts";

const BASE64_PATTERN = /^[A-Za-z0-9+/]*={0,2}$/;

export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/**
 * Strict standard base64 (padded, no whitespace). Buffer.from(s, "base64") skips bad characters
 * silently, which would turn a damaged share into a different share instead of an error.
 */
export function fromBase64(text: unknown, what: string): Uint8Array {
  if (typeof text !== "string") throw new RecoveryError("InvalidInput", `${what} must be a base64 string`);
  if (text.length % 4 !== 0 || !BASE64_PATTERN.test(text)) {
    throw new RecoveryError("InvalidInput", `${what} is not valid padded base64`);
  }
  const bytes = Buffer.from(text, "base64");
  if (bytes.toString("base64") !== text) {
    throw new RecoveryError("InvalidInput", `${what} is not canonical base64`);
  }
  return new Uint8Array(bytes);
}

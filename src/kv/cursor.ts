import { KvError } from "./errors.ts";
import { MAX_KEY_BYTES } from "./limits.ts";

/**
 * Continuation tokens for paginated range scans. A token names the last key returned, so a scan
 * resumes strictly after it even if keys were added or removed in between. The format is opaque
 * to callers: a version tag then the key in base64url.
 */
const PREFIX = "k1.";
const BASE64URL = /^[A-Za-z0-9_-]*$/;

export function encodeCursor(lastKey: string): string {
  return PREFIX + Buffer.from(lastKey, "latin1").toString("base64url");
}

/** The binary-string key a token names; KvError if the token was not made by `encodeCursor`. */
export function decodeCursor(token: unknown): string {
  if (typeof token !== "string" || !token.startsWith(PREFIX)) {
    throw new KvError("range: malformed continuation token (not issued by this store)");
  }
  const body = token.slice(PREFIX.length);
  if (!BASE64URL.test(body) || body.length > Math.ceil((MAX_KEY_BYTES * 4) / 3)) {
    throw new KvError("range: malformed continuation token (bad encoding)");
  }
  const key = Buffer.from(body, "base64url").toString("latin1");
  // Only the canonical encoding is accepted, so each key has exactly one token.
  if (encodeCursor(key) !== token) throw new KvError("range: malformed continuation token (not canonical)");
  return key;
}

// The `user_cose_sign1` and `member_cose_sign1` policies: the request body is a COSE_Sign1 signed
// with a registered user's or member's key, its payload the request's content.
import {
  COSE_HEADER_KID,
  CoseError,
  type CoseSign1Parts,
  coseDecodeSign1,
  coseVerifySign1,
} from "../crypto/index.ts";
import type { Store } from "../kv/index.ts";
import { fromUtf8, Tables, utf8 } from "../ledger/index.ts";
import type { PolicyResult } from "./auth-jwt.ts";

/** How far `created_at` may be from the node's clock, either way. */
export const COSE_MAX_CLOCK_SKEW_SECONDS = 600;

/** The protected header fields each policy reads, as CCF names them. */
const HEADERS = {
  user_cose_sign1: { createdAt: "ccf.msg.created_at", table: Tables.usersCerts, who: "user" },
  member_cose_sign1: { createdAt: "ccf.gov.msg.created_at", table: Tables.membersCerts, who: "member" },
} as const;

export type CosePolicy = keyof typeof HEADERS;

const ID_PATTERN = /^[0-9a-f]{64}$/;

function fail(reason: string): PolicyResult {
  return { ok: false, reason };
}

function contentType(headers: Record<string, string | string[] | undefined>): string {
  const value = headers["content-type"];
  return (typeof value === "string" ? value : "").split(";")[0]?.trim().toLowerCase() ?? "";
}

/** CCF clients send the CBOR tag 18; an untagged four-item array is accepted too. */
function tagged(body: Uint8Array): Uint8Array {
  if (body[0] !== 0x84) return body;
  const out = new Uint8Array(body.length + 1);
  out[0] = 0xd2;
  out.set(body, 1);
  return out;
}

function kidOf(parts: CoseSign1Parts): string | undefined {
  const kid = parts.protectedHeader.get(COSE_HEADER_KID);
  if (kid instanceof Uint8Array) return Buffer.from(kid).toString("latin1");
  return typeof kid === "string" ? kid : undefined;
}

export function checkCoseSign1(
  policy: CosePolicy,
  headers: Record<string, string | string[] | undefined>,
  body: Uint8Array,
  store: Store,
  nowSeconds: number,
): PolicyResult {
  const spec = HEADERS[policy];
  if (contentType(headers) !== "application/cose")
    return fail("the request's content-type is not application/cose");
  const bytes = tagged(body);
  let parts: CoseSign1Parts;
  try {
    parts = coseDecodeSign1(bytes);
  } catch (e) {
    return fail(`the body is not a COSE_Sign1: ${(e as Error).message}`);
  }
  if (parts.payload === null) return fail("the COSE_Sign1 payload is detached; it must be embedded");
  const kid = kidOf(parts);
  if (kid === undefined || !ID_PATTERN.test(kid)) {
    return fail(`the protected header's kid must be the ${spec.who} id (64 lowercase hex digits)`);
  }
  const cert = store.read(spec.table, utf8(kid));
  if (cert === undefined) return fail(`no ${spec.who} has id ${kid}`);
  const certPem = fromUtf8(cert);
  const createdAt = parts.protectedHeader.get(spec.createdAt);
  if (typeof createdAt !== "number" || !Number.isSafeInteger(createdAt)) {
    return fail(`the protected header must carry ${spec.createdAt} (seconds since the epoch)`);
  }
  let valid: boolean;
  try {
    valid = coseVerifySign1(bytes, certPem);
  } catch (e) {
    return fail(
      e instanceof CoseError ? e.message : `the signature cannot be checked: ${(e as Error).message}`,
    );
  }
  if (!valid) return fail(`the signature does not verify with ${spec.who} ${kid}'s certificate`);
  if (Math.abs(nowSeconds - createdAt) > COSE_MAX_CLOCK_SKEW_SECONDS) {
    return fail(
      `${spec.createdAt} ${createdAt} is more than ${COSE_MAX_CLOCK_SKEW_SECONDS} s from the node's clock (${nowSeconds})`,
    );
  }
  return { ok: true, caller: { policy, id: kid, certPem, content: parts.payload } };
}

import type { Caller } from "../../apps/index.ts";
import type { Tx } from "../../kv/index.ts";

const USERS_INFO = "public:ccf.gov.users.info";
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** A Tessera public key as Quorum clients write it: 32 bytes in standard base64. */
export const TESSERA_KEY = /^[A-Za-z0-9+/]{43}=$/;

function tesseraKeysOf(raw: Uint8Array | undefined): string[] {
  if (raw === undefined) return [];
  let info: unknown;
  try {
    info = JSON.parse(decoder.decode(raw));
  } catch {
    return [];
  }
  const list = (info as { user_data?: { tessera_public_keys?: unknown } })?.user_data?.tessera_public_keys;
  if (!Array.isArray(list)) return [];
  return list.filter((k): k is string => typeof k === "string" && TESSERA_KEY.test(k));
}

/**
 * The Tessera public keys governance bound to the calling Coco user: its
 * `user_data.tessera_public_keys` (set with `set_user` or `set_user_data`). They name the user as
 * a party in `privateFrom`/`privateFor`; a user with none is party to no private transaction.
 */
export function callerKeys(tx: Tx, caller: Caller): Set<string> {
  if (caller.policy !== "user_cert") return new Set();
  return new Set(tesseraKeysOf(tx.map(USERS_INFO).get(encoder.encode(caller.id))));
}

/** Every Tessera key governance bound to some user (to refuse recipients no one holds). */
export function boundKeys(tx: Tx): Set<string> {
  const out = new Set<string>();
  const users = tx.map(USERS_INFO);
  let after: string | undefined;
  do {
    const page = users.range({ limit: 1000, after });
    for (const [, value] of page.entries) for (const k of tesseraKeysOf(value)) out.add(k);
    after = page.next;
  } while (after !== undefined);
  return out;
}

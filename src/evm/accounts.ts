import type { Caller } from "../apps/index.ts";
import type { Tx } from "../kv/index.ts";

const USERS_INFO = "public:ccf.gov.users.info";
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/**
 * The Ethereum accounts bound to the calling Coco user, lower-case. The binding is governance's:
 * a user's `user_data.ethereum_addresses` (set with `set_user` or `set_user_data`). A user with
 * none may read public chain data but sends no transactions, and its calls run from address zero.
 */
export function boundAddresses(tx: Tx, caller: Caller): Set<string> {
  const out = new Set<string>();
  if (caller.policy !== "user_cert") return out;
  const raw = tx.map(USERS_INFO).get(encoder.encode(caller.id));
  if (raw === undefined) return out;
  let info: unknown;
  try {
    info = JSON.parse(decoder.decode(raw));
  } catch {
    return out;
  }
  const list = (info as { user_data?: { ethereum_addresses?: unknown } })?.user_data?.ethereum_addresses;
  if (!Array.isArray(list)) return out;
  for (const a of list) if (typeof a === "string" && /^0x[0-9a-fA-F]{40}$/.test(a)) out.add(a.toLowerCase());
  return out;
}

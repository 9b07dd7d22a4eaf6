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
export function boundAddresses(tx: Tx, caller: Caller): ReadonlySet<string> {
  if (caller.policy !== "user_cert") return NONE;
  const raw = tx.map(USERS_INFO).get(encoder.encode(caller.id));
  if (raw === undefined) return NONE;
  // Every request reads its caller's record (a read the KV transaction must record); parsing it
  // again is wasted while it has not changed.
  const cached = parsed.get(caller.id);
  if (cached && Buffer.from(cached.raw.buffer, cached.raw.byteOffset, cached.raw.length).equals(raw)) {
    return cached.addresses;
  }
  const addresses = parse(raw);
  if (parsed.size >= CACHE_MAX) parsed.delete(parsed.keys().next().value as string);
  parsed.set(caller.id, { raw, addresses });
  return addresses;
}

const NONE: ReadonlySet<string> = new Set();
const CACHE_MAX = 1024;
/** Per user id, the last record parsed and its addresses. */
const parsed = new Map<string, { raw: Uint8Array; addresses: ReadonlySet<string> }>();

function parse(raw: Uint8Array): ReadonlySet<string> {
  const out = new Set<string>();
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

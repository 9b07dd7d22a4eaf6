import { RLP } from "@ethereumjs/rlp";
import { bytesToHex, createAddressFromString, hexToBytes, setLengthLeft } from "@ethereumjs/util";
import type { Caller } from "../../apps/index.ts";
import type { Tx } from "../../kv/index.ts";
import { estimateGas, ethCall } from "../call.ts";
import { RpcError } from "../errors.ts";
import { keccak256 } from "../keccak.ts";
import type { TxResolver } from "../logs.ts";
import { latestOnly, METHODS, type MethodContext } from "../methods.ts";
import { getTx, type StoredTx } from "../records.ts";
import { contractGroupFor, groupMaps, isParty, PRIVATE_MAPS, txGroup } from "./groups.ts";
import {
  distributePrivateTransaction,
  isMarker,
  markedPrivateHash,
  PRIVACY_PRECOMPILE,
  sendPrivacyMarker,
} from "./marker.ts";
import { callerKeys } from "./parties.ts";
import { readPayload } from "./payloads.ts";
import { sendRawPrivateTransaction } from "./send.ts";
import { PrivateStateManager } from "./state.ts";

type Method = (ctx: MethodContext, params: unknown[]) => unknown | Promise<unknown>;
const decoder = new TextDecoder();
const ZERO_HASH = `0x${"00".repeat(32)}`;

/**
 * The caller's view of transaction records: a private transaction's full record for its parties,
 * and for everyone else the public marker, which shows nothing (its `privacy.party` is false).
 */
export function privateResolver(kv: Tx, keys: Set<string>): TxResolver {
  return (hash) => {
    const group = txGroup(kv, hash);
    if (group === undefined || !isParty(kv, group, keys)) return getTx(kv, hash);
    const raw = kv.map(groupMaps(group).txs).get(hexToBytes(hash as `0x${string}`));
    if (raw === undefined) return getTx(kv, hash);
    return { ...(JSON.parse(decoder.decode(raw)) as StoredTx), privacy: { group, party: true } };
  };
}

/**
 * What the executor adds to a request's context for the private methods. The caller's Tessera
 * keys (its user record, parsed) are read when a method first asks for them: most requests (every
 * public send) never do. Assign other fields onto the result rather than spreading it, which
 * would read them at once.
 */
export function privateContext(
  kv: Tx,
  caller: Caller,
): Pick<MethodContext, "lookupTx" | "partyKeys" | "partyOwner"> {
  let keys: Set<string> | undefined;
  const keysNow = (): Set<string> => {
    keys ??= callerKeys(kv, caller);
    return keys;
  };
  let resolve: TxResolver | undefined;
  return {
    get partyKeys(): Set<string> {
      return keysNow();
    },
    partyOwner: caller.policy === "user_cert" ? caller.id : "",
    lookupTx(hash: string) {
      resolve ??= privateResolver(kv, keysNow());
      return resolve(hash);
    },
  };
}

/** The private methods that write: they run on the primary (backups forward them). */
export const PRIVATE_PRIMARY_METHODS = new Set([
  "eth_sendRawPrivateTransaction",
  "eth_distributePrivateTransaction",
]);

const keysOf = (ctx: MethodContext) => ctx.partyKeys ?? new Set<string>();

function addressParam(v: unknown): string {
  if (typeof v !== "string" || !/^0x[0-9a-fA-F]{40}$/.test(v))
    throw new RpcError(-32602, "invalid params: address must be an address");
  return v.toLowerCase();
}

/** The group whose state a call to `to` runs over, when `to` is a private contract of the caller's. */
function callGroup(ctx: MethodContext, request: unknown): string | undefined {
  const to = (request as { to?: unknown } | null)?.to;
  if (typeof to !== "string" || !/^0x[0-9a-fA-F]{40}$/.test(to)) return undefined;
  return contractGroupFor(ctx.kv, to, keysOf(ctx));
}

/** A private contract's storage digest: keccak-256 of the RLP list of its [slot, value] pairs. */
function storageDigest(kv: Tx, group: string, address: string): string {
  const storage = kv.map(groupMaps(group).storage);
  const prefix = hexToBytes(address as `0x${string}`);
  const end = new Uint8Array(52).fill(0xff);
  end.set(prefix);
  const pairs: Uint8Array[][] = [];
  let after: string | undefined;
  do {
    const page = storage.range({ start: prefix, end, limit: 1000, after });
    for (const [k, v] of page.entries) pairs.push([k.subarray(20), v]);
    after = page.next;
  } while (after !== undefined);
  const last = storage.get(new Uint8Array([...prefix, ...new Uint8Array(32).fill(0xff)]));
  if (last !== undefined) pairs.push([new Uint8Array(32).fill(0xff), last]);
  if (pairs.length === 0) return ZERO_HASH;
  return bytesToHex(keccak256(RLP.encode(pairs)));
}

/**
 * GoQuorum's private-transaction methods, and the reads that must see a caller's private
 * contracts (a party reads the group's state; everyone else reads public state, where a private
 * contract does not exist). Methods not listed here are the public ones of ../methods.ts, whose
 * transaction, receipt, log and block reads go through the context's resolver.
 */
export const PRIVATE_METHODS: Record<string, Method> = {
  eth_sendRawPrivateTransaction: ({ kv, bound, host, partyKeys }, [raw, args]) =>
    sendRawPrivateTransaction(kv, raw, args, bound, partyKeys ?? new Set(), host.now, host),
  // Privacy marker transactions (marker.ts): distribute, then a public marker to the precompile.
  eth_getPrivacyPrecompileAddress: () => PRIVACY_PRECOMPILE,
  eth_distributePrivateTransaction: ({ kv, bound, host, partyKeys, partyOwner }, [raw, args]) =>
    distributePrivateTransaction(kv, raw, args, bound, partyKeys ?? new Set(), partyOwner ?? "", host),
  eth_sendRawTransaction: (ctx, params) => {
    if (!isMarker(ctx.kv, params[0])) return METHODS.eth_sendRawTransaction!(ctx, params);
    const { kv, bound, host, partyKeys, partyOwner } = ctx;
    return sendPrivacyMarker(kv, params[0], bound, partyKeys ?? new Set(), partyOwner ?? "", host.now, host);
  },
  eth_getPrivateTransactionByHash: (ctx, [h]) => {
    const inner = markedPrivateHash(ctx.kv, h, keysOf(ctx));
    return inner === undefined ? null : METHODS.eth_getTransactionByHash!(ctx, [inner]);
  },
  eth_getPrivateTransactionReceipt: (ctx, [h]) => {
    const inner = markedPrivateHash(ctx.kv, h, keysOf(ctx));
    return inner === undefined ? null : METHODS.eth_getTransactionReceipt!(ctx, [inner]);
  },
  eth_getQuorumPayload: ({ kv, partyKeys }, [id]) => {
    if (typeof id !== "string" || !/^0x[0-9a-fA-F]{128}$/.test(id))
      throw new RpcError(-32602, "invalid params: expected the 64-byte payload key in hex");
    const stored = readPayload(kv, hexToBytes(id as `0x${string}`));
    // As GoQuorum: "0x" when this caller is not a party (or the key is unknown).
    if (!stored) return "0x";
    const keys = partyKeys ?? new Set<string>();
    if (!keys.has(stored.from) && usedBy(kv, id, keys) === undefined) return "0x";
    return bytesToHex(Buffer.from(stored.payload, "base64"));
  },
  eth_getContractPrivacyMetadata: (ctx, [a]) => {
    const address = addressParam(a);
    const group = contractGroupFor(ctx.kv, address, keysOf(ctx));
    if (!group) return null;
    return { creationTxHash: null, privacyFlag: 0, mandatoryFor: null, privacyGroupId: group };
  },
  eth_storageRoot: (ctx, [a]) => {
    const address = addressParam(a);
    const group = contractGroupFor(ctx.kv, address, keysOf(ctx));
    return group ? storageDigest(ctx.kv, group, address) : ZERO_HASH;
  },
  eth_getCode: async (ctx, params) => {
    const group = contractGroupFor(ctx.kv, addressParam(params[0]), keysOf(ctx));
    if (!group) return METHODS.eth_getCode!(ctx, params);
    latestOnly(ctx.kv, params[1]);
    return bytesToHex(
      await new PrivateStateManager(ctx.kv, group).getCode(createAddressFromString(params[0] as string)),
    );
  },
  eth_getStorageAt: async (ctx, params) => {
    const [a, slot] = params;
    const group = contractGroupFor(ctx.kv, addressParam(a), keysOf(ctx));
    if (!group) return METHODS.eth_getStorageAt!(ctx, params);
    latestOnly(ctx.kv, params[2]);
    // A private contract's parties share all of its state, as in Quorum: every slot is readable.
    if (typeof slot !== "string" || !/^0x[0-9a-fA-F]{1,64}$/.test(slot))
      throw new RpcError(-32602, "invalid params: slot must be a hex quantity");
    const key = setLengthLeft(hexToBytes(`0x${slot.slice(2).padStart(64, "0")}` as `0x${string}`), 32);
    const state = new PrivateStateManager(ctx.kv, group);
    return bytesToHex(setLengthLeft(await state.getStorage(createAddressFromString(a as string), key), 32));
  },
  eth_call: overPrivateState("eth_call", ethCall),
  eth_estimateGas: overPrivateState("eth_estimateGas", estimateGas),
};

/**
 * `eth_call` or `eth_estimateGas` (`run`) over the group's private state when `to` is a private
 * contract of the caller's; the public method otherwise.
 */
function overPrivateState(name: "eth_call" | "eth_estimateGas", run: typeof ethCall): Method {
  return (ctx, params) => {
    const group = callGroup(ctx, params[0]);
    if (!group) return METHODS[name]!(ctx, params);
    latestOnly(ctx.kv, params[1]);
    return run(
      ctx.kv,
      params[0],
      ctx.bound,
      ctx.host,
      ctx.host.now,
      (kv, from) => new PrivateStateManager(kv, group, from),
    );
  };
}

/** The group of the private transaction that used payload `id`, when the caller is a party of it. */
function usedBy(kv: Tx, id: string, keys: Set<string>): string | undefined {
  const raw = kv.map(PRIVATE_MAPS.payloadGroups).get(hexToBytes(id as `0x${string}`));
  if (raw === undefined) return undefined;
  const group = `0x${Buffer.from(raw).toString("hex")}`;
  return isParty(kv, group, keys) ? group : undefined;
}

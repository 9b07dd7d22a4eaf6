import { createHash } from "node:crypto";
import { hexToBytes } from "@ethereumjs/util";
import type { Tx } from "../../kv/index.ts";
import type { StateMaps } from "../state.ts";

/**
 * Where private transactions keep their data. All are private maps (encrypted in the ledger);
 * what a caller may read of them is decided per request by its Tessera keys (parties.ts).
 */
export const PRIVATE_MAPS = {
  /** payload key (64 bytes) -> JSON { payload (base64), from (sender's key), owner (user id) }. */
  payloads: "coco.quorum.payloads",
  /** group id (32 bytes) -> JSON { members: sorted Tessera keys }. */
  groups: "coco.quorum.groups",
  /** private contract address (20 bytes) -> group id. */
  contracts: "coco.quorum.contracts",
  /** private transaction hash (32 bytes) -> group id. */
  txGroups: "coco.quorum.tx_groups",
  /** payload key (64 bytes) -> the group of the private transaction that used it (once). */
  payloadGroups: "coco.quorum.payload_groups",
  /** distributed key (64 bytes) -> JSON { raw private transaction, its args, owner }, until a marker runs it. */
  distributed: "coco.quorum.distributed",
  /** privacy marker hash (32 bytes) -> JSON { privateHash, group }. */
  markers: "coco.quorum.markers",
} as const;

/** A privacy group's own maps: its contracts' accounts, code, storage and transaction records. */
export interface GroupMaps extends StateMaps {
  txs: string;
}

export function groupMaps(group: string): GroupMaps {
  const base = `coco.quorum.group.${group.slice(2)}`;
  return {
    accounts: `${base}.accounts`,
    code: `${base}.code`,
    storage: `${base}.storage`,
    txs: `${base}.txs`,
  };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A privacy group is the set of parties of a private transaction (`privateFrom` and
 * `privateFor`); its id is the SHA-256 of the sorted keys, so the same parties always share one
 * private state, and every party computes the same one.
 */
export function groupIdOf(members: string[]): string {
  const sorted = [...new Set(members)].sort();
  return `0x${createHash("sha256").update(sorted.join(",")).digest("hex")}`;
}

export function readGroup(tx: Tx, group: string): string[] | undefined {
  const raw = tx.map(PRIVATE_MAPS.groups).get(hexToBytes(group as `0x${string}`));
  return raw === undefined ? undefined : (JSON.parse(decoder.decode(raw)) as { members: string[] }).members;
}

export function putGroup(tx: Tx, group: string, members: string[]): void {
  const key = hexToBytes(group as `0x${string}`);
  if (tx.map(PRIVATE_MAPS.groups).get(key) !== undefined) return;
  const record = { members: [...new Set(members)].sort() };
  tx.map(PRIVATE_MAPS.groups).set(key, encoder.encode(JSON.stringify(record)));
}

/** True when one of `keys` is a member of the group. */
export function isParty(tx: Tx, group: string, keys: Set<string>): boolean {
  return (readGroup(tx, group) ?? []).some((k) => keys.has(k));
}

/** The group of a private contract, whatever the caller (for the sender's checks). */
export function contractGroup(tx: Tx, address: string): string | undefined {
  const raw = tx.map(PRIVATE_MAPS.contracts).get(hexToBytes(address as `0x${string}`));
  return raw === undefined ? undefined : (`0x${Buffer.from(raw).toString("hex")}` as string);
}

/** The group of a private contract when the caller is one of its parties; otherwise undefined. */
export function contractGroupFor(tx: Tx, address: string, keys: Set<string>): string | undefined {
  const group = contractGroup(tx, address.toLowerCase());
  return group !== undefined && isParty(tx, group, keys) ? group : undefined;
}

export function txGroup(tx: Tx, hash: string): string | undefined {
  const raw = tx.map(PRIVATE_MAPS.txGroups).get(hexToBytes(hash as `0x${string}`));
  return raw === undefined ? undefined : `0x${Buffer.from(raw).toString("hex")}`;
}

import type { AccountFields, StateManagerInterface, StorageDump, StorageRange } from "@ethereumjs/common";
import {
  Account,
  type Address,
  createAccountFromRLP,
  hexToBytes,
  KECCAK256_NULL,
  setLengthLeft,
  unpadBytes,
} from "@ethereumjs/util";
import type { Tx } from "../kv/index.ts";
import { toHex } from "./hex.ts";
import { keccak256 } from "./keccak.ts";
import { EVM_MAPS } from "./maps.ts";

const ZERO32 = new Uint8Array(32);

/**
 * Contract code by map and code hash, shared by every state manager of this process. Code is
 * content-addressed (its key is its hash, written once), so a cached entry can never be stale, and
 * the read it saves decides nothing a conflict check needs: the account read that yields the hash
 * is recorded as usual. Handing out one array per hash is also what lets the interpreter's jump
 * analysis be cached per code (src/evm/jumps.ts).
 */
const codeByHash = new Map<string, Uint8Array>();
const CODE_CACHE_MAX = 512;

/** The three maps an Ethereum state lives in. */
export interface StateMaps {
  accounts: string;
  code: string;
  storage: string;
}

/** One checkpoint's writes over the layer below it. */
export class Overlay {
  /** address hex -> account, or null once deleted. */
  accounts = new Map<string, Account | null>();
  /** address hex -> code. */
  code = new Map<string, Uint8Array>();
  /** address hex + slot hex -> value (unpadded; empty = zero). */
  storage = new Map<string, Uint8Array>();
  /** Addresses whose storage below this layer was cleared. */
  cleared = new Set<string>();

  mergeInto(lower: Overlay): void {
    for (const a of this.cleared) {
      for (const k of [...lower.storage.keys()]) if (k.startsWith(a)) lower.storage.delete(k);
      lower.cleared.add(a);
    }
    for (const [k, v] of this.accounts) lower.accounts.set(k, v);
    for (const [k, v] of this.code) lower.code.set(k, v);
    for (const [k, v] of this.storage) lower.storage.set(k, v);
  }
}

/**
 * Ethereum state over one Coco KV transaction. Checkpoints are overlays in memory: the EVM's
 * nested calls commit into the layer below or are dropped; nothing reaches the KV transaction
 * until `flush`, so the KV still holds the state from before the Ethereum transaction, which is
 * what the gas refund rules (EIP-2200/3529) call original storage. `eth_call` never flushes.
 */
export class KvStateManager implements StateManagerInterface {
  protected readonly layers: Overlay[] = [new Overlay()];

  /** `maps`: where accounts, code and storage live (a private contract's group has its own). */
  constructor(
    protected tx: Tx,
    protected readonly maps: StateMaps = EVM_MAPS,
  ) {}

  /**
   * What this binding read from the KV, decoded once: accounts (null when absent) and storage
   * slots (by address hex + slot hex). The EVM asks for the same accounts many times in one
   * transaction (sender, callee, each call frame), and each KV read copies and decodes. Valid
   * while the KV transaction holds only what it held when read: cleared on bind and on flush.
   */
  private readonly accountReads = new Map<string, Account | null>();
  private readonly storageReads = new Map<string, Uint8Array>();

  /** Points a pooled state manager at another KV transaction, forgetting any unflushed writes. */
  bind(tx: Tx): void {
    this.tx = tx;
    this.accountReads.clear();
    this.storageReads.clear();
    this.discard();
  }

  readonly originalStorageCache = {
    get: async (address: Address, key: Uint8Array): Promise<Uint8Array> =>
      this.storageRead(address, key, toHex(address.bytes) + toHex(key).slice(2)),
    clear: (): void => {},
  };

  private storageRead(address: Address, key: Uint8Array, k: string): Uint8Array {
    let value = this.storageReads.get(k);
    if (value === undefined) {
      value = this.kvStorage(address, key);
      this.storageReads.set(k, value);
    }
    return value;
  }

  protected get top(): Overlay {
    return this.layers[this.layers.length - 1]!;
  }

  protected kvAccount(address: Address): Account | undefined {
    const raw = this.tx.map(this.maps.accounts).get(address.bytes);
    return raw === undefined ? undefined : createAccountFromRLP(raw);
  }

  protected kvStorage(address: Address, key: Uint8Array): Uint8Array {
    const raw = this.tx.map(this.maps.storage).get(storageKey(address.bytes, key));
    return raw === undefined ? new Uint8Array(0) : raw;
  }

  async getAccount(address: Address): Promise<Account | undefined> {
    return this.accountNow(address);
  }

  /** `getAccount` without the promise (the fast transaction path is synchronous). */
  accountNow(address: Address): Account | undefined {
    const a = toHex(address.bytes);
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const hit = this.layers[i]!.accounts.get(a);
      if (hit !== undefined) return hit === null ? undefined : copyAccount(hit);
    }
    let read = this.accountReads.get(a);
    if (read === undefined) {
      read = this.kvAccount(address) ?? null;
      this.accountReads.set(a, read);
    }
    // A copy: the EVM changes the accounts it is given before putting them back.
    return read === null ? undefined : copyAccount(read);
  }

  async putAccount(address: Address, account?: Account): Promise<void> {
    this.putAccountNow(address, account);
  }

  /** `putAccount` without the promise (the fast transaction path is synchronous). */
  putAccountNow(address: Address, account?: Account): void {
    this.top.accounts.set(toHex(address.bytes), account === undefined ? null : copyAccount(account));
  }

  async deleteAccount(address: Address): Promise<void> {
    this.deleteAccountNow(address);
  }

  /** `deleteAccount` without the promise. */
  deleteAccountNow(address: Address): void {
    this.top.accounts.set(toHex(address.bytes), null);
    this.top.cleared.add(toHex(address.bytes));
    for (const k of [...this.top.storage.keys()])
      if (k.startsWith(toHex(address.bytes))) this.top.storage.delete(k);
  }

  async modifyAccountFields(address: Address, fields: AccountFields): Promise<void> {
    const account = (await this.getAccount(address)) ?? new Account();
    if (fields.nonce !== undefined) account.nonce = fields.nonce;
    if (fields.balance !== undefined) account.balance = fields.balance;
    if (fields.codeHash !== undefined) account.codeHash = fields.codeHash;
    if (fields.codeSize !== undefined) account.codeSize = fields.codeSize;
    if (fields.storageRoot !== undefined) account.storageRoot = fields.storageRoot;
    await this.putAccount(address, account);
  }

  async putCode(address: Address, value: Uint8Array): Promise<void> {
    const codeHash = value.length === 0 ? KECCAK256_NULL : keccak256(value);
    this.top.code.set(toHex(codeHash), value);
    await this.modifyAccountFields(address, { codeHash, codeSize: value.length });
  }

  async getCode(address: Address): Promise<Uint8Array> {
    return this.codeNow(address);
  }

  /** `getCode` without the promise. */
  codeNow(address: Address): Uint8Array {
    const account = this.accountNow(address);
    if (account === undefined || equal(account.codeHash, KECCAK256_NULL)) return new Uint8Array(0);
    const hash = toHex(account.codeHash);
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const hit = this.layers[i]!.code.get(hash);
      if (hit !== undefined) return hit;
    }
    return this.kvCode(account.codeHash);
  }

  protected kvCode(codeHash: Uint8Array): Uint8Array {
    const key = `${this.maps.code}/${toHex(codeHash)}`;
    const known = codeByHash.get(key);
    if (known) return known;
    const code = this.tx.map(this.maps.code).get(codeHash);
    if (code === undefined) return new Uint8Array(0);
    if (codeByHash.size >= CODE_CACHE_MAX) codeByHash.delete(codeByHash.keys().next().value as string);
    codeByHash.set(key, code);
    return code;
  }

  async getCodeSize(address: Address): Promise<number> {
    return (await this.getCode(address)).length;
  }

  async getStorage(address: Address, key: Uint8Array): Promise<Uint8Array> {
    if (key.length !== 32) throw new Error("storage key must be 32 bytes");
    const a = toHex(address.bytes);
    const k = a + toHex(key).slice(2);
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const layer = this.layers[i]!;
      const hit = layer.storage.get(k);
      if (hit !== undefined) return hit;
      if (layer.cleared.has(a)) return new Uint8Array(0);
    }
    return this.storageRead(address, key, k);
  }

  /**
   * The synchronous face the fast interpreter (src/evm/fast) uses: the same reads and writes as
   * `getStorage`, `originalStorageCache.get` and `putStorage`, by `k` (address hex + slot hex,
   * as the overlays key slots) with the 32-byte slot built only when the KV must be read.
   */
  slotNow(address: Address, slot: () => Uint8Array, k: string): Uint8Array {
    const a = k.slice(0, 42);
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const layer = this.layers[i]!;
      const hit = layer.storage.get(k);
      if (hit !== undefined) return hit;
      if (layer.cleared.has(a)) return new Uint8Array(0);
    }
    return this.slotOriginal(address, slot, k);
  }

  slotOriginal(address: Address, slot: () => Uint8Array, k: string): Uint8Array {
    let value = this.storageReads.get(k);
    if (value === undefined) {
      value = this.kvStorage(address, slot());
      this.storageReads.set(k, value);
    }
    return value;
  }

  /** `value` already without leading zeros (empty for zero). */
  putSlot(k: string, value: Uint8Array): void {
    this.top.storage.set(k, value);
  }

  async putStorage(address: Address, key: Uint8Array, value: Uint8Array): Promise<void> {
    if (key.length !== 32) throw new Error("storage key must be 32 bytes");
    this.top.storage.set(toHex(address.bytes) + toHex(key).slice(2), unpadBytes(value));
  }

  async clearStorage(address: Address): Promise<void> {
    const a = toHex(address.bytes);
    for (const k of [...this.top.storage.keys()]) if (k.startsWith(a)) this.top.storage.delete(k);
    this.top.cleared.add(a);
  }

  async checkpoint(): Promise<void> {
    this.layers.push(new Overlay());
  }

  async commit(): Promise<void> {
    if (this.layers.length < 2) throw new Error("commit without a checkpoint");
    this.layers.pop()!.mergeInto(this.top);
  }

  async revert(): Promise<void> {
    if (this.layers.length < 2) throw new Error("revert without a checkpoint");
    this.layers.pop();
  }

  /** Coco keeps no state trie: the ledger's Merkle tree is what proves state. */
  async getStateRoot(): Promise<Uint8Array> {
    return ZERO32;
  }
  async setStateRoot(): Promise<void> {
    throw new Error("Coco's EVM state has no state roots to switch to");
  }
  async hasStateRoot(): Promise<boolean> {
    return false;
  }
  async dumpStorage(): Promise<StorageDump> {
    throw new Error("storage dumps are not served: contract storage is private");
  }
  async dumpStorageRange(): Promise<StorageRange> {
    throw new Error("storage dumps are not served: contract storage is private");
  }
  clearCaches(): void {}
  shallowCopy(): StateManagerInterface {
    return new KvStateManager(this.tx, this.maps);
  }

  /** True when nothing is pending: no checkpoint open and no write since the last flush. */
  isPristine(): boolean {
    if (this.layers.length !== 1) return false;
    const base = this.layers[0]!;
    return (
      base.accounts.size === 0 && base.code.size === 0 && base.storage.size === 0 && base.cleared.size === 0
    );
  }

  /** Forgets everything not flushed (eth_call and eth_estimateGas runs end here). */
  discard(): void {
    this.layers.length = 0;
    this.layers.push(new Overlay());
  }

  /**
   * True when `account` is what the KV holds for it already: the EVM puts back every account it
   * touches (a call's callee, with its balance unchanged), and writing the same bytes again would
   * cost a key in the write set, the ledger and every backup's apply for nothing.
   */
  private unchanged(a: string, key: Uint8Array, account: Account): boolean {
    const read = this.accountReads.get(a);
    if (!read || read.nonce !== account.nonce || read.balance !== account.balance) return false;
    const stored = this.tx.map(this.maps.accounts).get(key);
    return stored !== undefined && equal(stored, account.serialize());
  }

  /** Writes the Ethereum transaction's effects into the KV transaction. */
  flush(): void {
    if (this.layers.length !== 1) throw new Error(`flush with ${this.layers.length - 1} open checkpoints`);
    const base = this.layers[0]!;
    const accounts = this.tx.map(this.maps.accounts);
    const code = this.tx.map(this.maps.code);
    const storage = this.tx.map(this.maps.storage);
    for (const a of base.cleared) {
      const prefix = hexToBytes(a as `0x${string}`);
      // Storage exists only under an account that exists (a contract: code, nonce 1), and an
      // account leaves with its storage: an address with no account has none to delete. EIP-161
      // removes the zero-balance coinbase after every transaction; this spares it a range scan.
      if (!accounts.has(prefix)) continue;
      const end = new Uint8Array(52).fill(0xff);
      end.set(prefix);
      const keys: Uint8Array[] = [];
      let after: string | undefined;
      do {
        const page = storage.range({ start: prefix, end, limit: 1000, after });
        for (const [k] of page.entries) keys.push(k);
        after = page.next;
      } while (after !== undefined);
      for (const k of keys) storage.delete(k);
      const last = storageKey(prefix, new Uint8Array(32).fill(0xff));
      storage.delete(last);
    }
    for (const [a, account] of base.accounts) {
      const key = hexToBytes(a as `0x${string}`);
      if (account === null) accounts.delete(key);
      else if (!this.unchanged(a, key, account)) accounts.set(key, account.serialize());
    }
    for (const [h, c] of base.code) if (c.length > 0) code.set(hexToBytes(h as `0x${string}`), c);
    for (const [k, v] of base.storage) {
      const key = hexToBytes(`0x${k.slice(2)}` as `0x${string}`);
      if (v.length === 0) storage.delete(key);
      else storage.set(key, v);
    }
    this.layers[0] = new Overlay();
    this.accountReads.clear();
    this.storageReads.clear();
  }
}

export function storageKey(address: Uint8Array, slot: Uint8Array): Uint8Array {
  const out = new Uint8Array(52);
  out.set(address);
  out.set(setLengthLeft(slot, 32), 20);
  return out;
}

function copyAccount(a: Account): Account {
  return new Account(a.nonce, a.balance, a.storageRoot, a.codeHash, a.codeSize);
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

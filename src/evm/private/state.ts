import { type Account, type Address, createAccountFromRLP } from "@ethereumjs/util";
import type { Tx } from "../../kv/index.ts";
import { EVM_MAPS } from "../maps.ts";
import { KvStateManager, storageKey } from "../state.ts";
import { groupMaps } from "./groups.ts";

/** Thrown when a private transaction would change public state; the transaction is refused. */
export class PublicWriteError extends Error {}

/**
 * A privacy group's state over the public one, as Quorum's private state works: the group's
 * contracts live in its own maps; public contracts are read through but never written. The
 * sender's account is the public one (its nonce decides a new contract's address); its changes
 * stay in memory and never reach the group's maps (the public nonce is spent by the caller).
 */
export class PrivateStateManager extends KvStateManager {
  constructor(
    tx: Tx,
    readonly group: string,
    private readonly sender?: Address,
  ) {
    super(tx, groupMaps(group));
  }

  private privateAccount(address: Address): Account | undefined {
    return super.kvAccount(address);
  }

  private publicAccount(address: Address): Account | undefined {
    const raw = this.tx.map(EVM_MAPS.accounts).get(address.bytes);
    return raw === undefined ? undefined : createAccountFromRLP(raw);
  }

  /** An address the group has nothing of, but public state has: read-only to this transaction. */
  private isPublic(address: Address): boolean {
    if (this.sender?.equals(address)) return false;
    return this.privateAccount(address) === undefined && this.publicAccount(address) !== undefined;
  }

  protected override kvAccount(address: Address): Account | undefined {
    if (this.sender?.equals(address)) return this.publicAccount(address);
    return this.privateAccount(address) ?? this.publicAccount(address);
  }

  protected override kvStorage(address: Address, key: Uint8Array): Uint8Array {
    if (this.isPublic(address)) {
      return this.tx.map(EVM_MAPS.storage).get(storageKey(address.bytes, key)) ?? new Uint8Array(0);
    }
    return super.kvStorage(address, key);
  }

  protected override kvCode(codeHash: Uint8Array): Uint8Array {
    const own = super.kvCode(codeHash);
    return own.length > 0 ? own : (this.tx.map(EVM_MAPS.code).get(codeHash) ?? new Uint8Array(0));
  }

  override async putAccount(address: Address, account?: Account): Promise<void> {
    if (this.isPublic(address)) {
      // The EVM re-puts every callee; an unchanged public account is no write.
      const current = this.publicAccount(address)!;
      if (account !== undefined && equalBytes(account.serialize(), current.serialize())) return;
      throw new PublicWriteError(`a private transaction may not change the public account ${address}`);
    }
    await super.putAccount(address, account);
  }

  override async deleteAccount(address: Address): Promise<void> {
    if (this.isPublic(address)) throw new PublicWriteError(`a private transaction may not delete ${address}`);
    await super.deleteAccount(address);
  }

  override async putStorage(address: Address, key: Uint8Array, value: Uint8Array): Promise<void> {
    if (this.isPublic(address)) {
      throw new PublicWriteError(
        `a private transaction may not write the storage of public contract ${address}`,
      );
    }
    await super.putStorage(address, key, value);
  }

  override async clearStorage(address: Address): Promise<void> {
    if (this.isPublic(address)) throw new PublicWriteError(`a private transaction may not clear ${address}`);
    await super.clearStorage(address);
  }

  override shallowCopy(): KvStateManager {
    return new PrivateStateManager(this.tx, this.group, this.sender);
  }

  /**
   * Writes the group's changes; the sender's account is public and is left out. Answers the
   * accounts written, so contracts a private contract creates join its group too.
   */
  override flush(): string[] {
    const base = this.layers[0]!;
    if (this.sender) base.accounts.delete(this.sender.toString());
    const written = [...base.accounts.keys()];
    super.flush();
    return written;
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

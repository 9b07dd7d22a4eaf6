/** Coco's key-value store: ordered byte maps, versioned, with optimistic-concurrency transactions. */
export { KvError, KvInvariantError } from "./errors.ts";
export {
  DEFAULT_CONFLICT_WINDOW,
  DEFAULT_RANGE_LIMIT,
  MAX_KEY_BYTES,
  MAX_MAP_NAME_BYTES,
  MAX_RANGE_LIMIT,
  MAX_VALUE_BYTES,
} from "./limits.ts";
export { isPublicMap, validateMapName } from "./names.ts";
export { EntryCursor, type MapSnapshot, type StoreSnapshot, StoreVersion } from "./snapshot.ts";
export { type CommitResult, Store, type StoreOptions } from "./store.ts";
export type { RangeOptions, RangeResult, Tx, TxMap } from "./tx.ts";
export { formatTxId, parseTxId, type TxId, TxIdError } from "./txid.ts";
export type { Key, MapUpdate, MapWriteSet, Value, WriteSet } from "./writeset.ts";

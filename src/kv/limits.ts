/**
 * Size limits. Keys may be large (CCF allows big keys, and apps use structured keys), but a bound
 * keeps a single entry from exhausting memory or the ledger's entry size.
 */
export const MAX_KEY_BYTES = 65536;
export const MAX_VALUE_BYTES = 16 * 1024 * 1024;
export const MAX_MAP_NAME_BYTES = 255;

/** Page sizes for `TxMap.range`. */
export const DEFAULT_RANGE_LIMIT = 100;
export const MAX_RANGE_LIMIT = 10000;

/**
 * How many committed versions a transaction may lag behind and still be checked for conflicts.
 * Older transactions get `conflict` at commit; this bounds what a leaked (never committed, never
 * abandoned) transaction can pin.
 */
export const DEFAULT_CONFLICT_WINDOW = 10000;

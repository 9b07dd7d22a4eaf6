// Host-side interfaces the engine is driven with.
import type { JsLimits } from "./limits.ts";
import type { JsModuleSet } from "./modules.ts";

/**
 * The key-value store as the sandbox sees it: maps by name, raw byte keys and values.
 * One host crossing per operation, so implementations should answer from memory.
 * Errors thrown here reach the JS code as ordinary exceptions carrying the same message.
 */
export interface KvAccess {
  get(map: string, key: Uint8Array): Uint8Array | undefined;
  /** Optional; `get(map, key) !== undefined` when absent. */
  has?(map: string, key: Uint8Array): boolean;
  set(map: string, key: Uint8Array, value: Uint8Array): void;
  /** Returns whether the key was present. */
  delete(map: string, key: Uint8Array): boolean;
  clear(map: string): void;
  /** Every entry of a map. Implement this or forEach; the sandbox takes a snapshot either way. */
  entries?(map: string): Iterable<readonly [Uint8Array, Uint8Array]>;
  /** Every entry of a map, by callback. Implement this or entries. */
  forEach?(map: string, callback: (key: Uint8Array, value: Uint8Array) => void): void;
  size(map: string): number;
  /** Optional; the sandbox's `getVersionOfPreviousWrite` returns undefined when absent. */
  getVersionOfPreviousWrite?(map: string, key: Uint8Array): number | undefined;
  /**
   * Optional (Coco, beyond CCF): one page of the map's entries in key byte order, from `start`
   * (inclusive) to `end` (exclusive), resuming after a `next` token of an earlier page.
   */
  range?(map: string, options: KvRangeOptions): { entries: Array<[Uint8Array, Uint8Array]>; next?: string };
}

export interface KvRangeOptions {
  start?: Uint8Array;
  end?: Uint8Array;
  limit?: number;
  after?: string;
}

/** A host function reachable from the sandbox. Arguments arrive unchecked: validate them. */
export type JsHostFn = (...args: unknown[]) => unknown;

/** A historical transaction's state as offered to `ccf.historicalState` and `getStateRange`. */
export interface JsHistoricalState {
  transactionId: string;
  receipt: unknown;
  /** Read-only in the sandbox. */
  kv: KvAccess;
}

/**
 * Service operations behind the `ccf` global, passed per call. Each one not provided throws a
 * JS error "ccf.<path> is not available here" when called. Byte arguments arrive as Uint8Array,
 * byte results may be Uint8Array or ArrayBuffer; everything else is JSON-compatible.
 * The comments give what CCF's default constitution passes.
 */
export interface JsHooks {
  node?: {
    triggerLedgerRekey?: JsHostFn;
    triggerRecoverySharesRefresh?: JsHostFn;
    triggerSnapshot?: JsHostFn;
    triggerLedgerChunk?: JsHostFn;
    /** (interfaces: string[] | undefined) */
    triggerACMERefresh?: JsHostFn;
    /** (previousIdentity: Uint8Array | undefined, nextIdentity: Uint8Array), PEM bytes. */
    transitionServiceToOpen?: JsHostFn;
  };
  network?: {
    /** (csrPem: string, validFrom: string | undefined, validityDays: number) => certificate PEM */
    generateEndorsedCertificate?: JsHostFn;
    /** (validFrom: string | undefined, validityDays: number) => certificate PEM */
    generateNetworkCertificate?: JsHostFn;
    /** () => seqno */
    getLatestLedgerSecretSeqno?: JsHostFn;
  };
  /** (issuer: string, metadata: object, jwks: object) */
  setJwtPublicSigningKeys?: JsHostFn;
  /** (issuer: string) */
  removeJwtPublicSigningKeys?: JsHostFn;
  refreshAppBytecodeCache?: JsHostFn;
  rpc?: {
    /** (force: boolean) */
    setApplyWrites?: JsHostFn;
    /** (digest: Uint8Array) */
    setClaimsDigest?: JsHostFn;
  };
  consensus?: {
    /** () => { view, seqno } */
    getLastCommittedTxId?: JsHostFn;
    /** (view, seqno) => "Committed" | "Invalid" | "Pending" | "Unknown" */
    getStatusForTxId?: JsHostFn;
    /** (seqno) => view | null */
    getViewForSeqno?: JsHostFn;
  };
  historical?: {
    /** (handle, startSeqno, endSeqno, secondsUntilExpiry) => JsHistoricalState[] | null */
    getStateRange?: (...args: unknown[]) => JsHistoricalState[] | null;
    /** (handle) => boolean */
    dropCachedStates?: JsHostFn;
  };
  host?: {
    /** (args: string[]) */
    triggerSubprocess?: JsHostFn;
    /** Coco: ({url, method?, headers?, body?}) => {status, headers, body: ArrayBuffer, digest} */
    fetch?: JsHostFn;
  };
}

export type JsLogLevel = "debug" | "info" | "warn" | "error";
/** Receives the sandbox's console output, one line per console call (already truncated). */
export type JsLogger = (level: JsLogLevel, message: string) => void;

/** The injected environment: the clock (ms) for deadlines and trusted Date, and randomness. */
export interface JsEnv {
  now(): number;
  randomBytes(n: number): Uint8Array;
}

export interface JsEngineOptions {
  env: JsEnv;
  logger?: JsLogger;
  /** Defaults for every call; a call's `limits` override them field by field. */
  limits?: Partial<JsLimits>;
  /** Warm contexts kept (least recently used evicted). Default 8. */
  maxCachedContexts?: number;
  /** Console lines longer than this are cut. Default 4096 characters. */
  maxLogLineLength?: number;
}

export interface JsCallOptions {
  /** The modules, name -> source, or a prepared set from createModuleSet (faster: hashed once). */
  modules: JsModuleSet | Readonly<Record<string, string>>;
  /** Name of the module whose export is called. */
  entry: string;
  /** Name of the exported function. */
  fn: string;
  /** JSON-compatible values; Uint8Array/ArrayBuffer become ArrayBuffer; undefined stays undefined. */
  args?: readonly unknown[];
  /** Backing store of `ccf.kv`; without it, touching `ccf.kv` throws in JS. */
  kv?: KvAccess;
  /** Refuse every write through `ccf.kv` with a JS TypeError naming the map. */
  readOnly?: boolean;
  hooks?: JsHooks;
  /** Exposed as `ccf.historicalState` (historical endpoints). */
  historicalState?: JsHistoricalState;
  limits?: Partial<JsLimits>;
  /** Overrides the engine's logger for this call (e.g. to tag lines with a request id). */
  logger?: JsLogger;
  /**
   * Names the warm context to use among those of the same module set (CCF's interpreter_reuse
   * key): contexts under different names keep separate module state. Default: one per set.
   */
  context?: string;
  /** Runs in a new context, discarded afterwards: no module state survives the call. */
  fresh?: boolean;
  /**
   * Runs in a sealed, reused context against a fresh instance of the entry module: nothing the
   * call does (module state, globals, built-ins) reaches a later call, yet the module is compiled
   * once (the constitution and ballots; docs/js-runtime.md "Isolated calls").
   */
  isolated?: boolean;
}

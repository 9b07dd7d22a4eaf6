import { type Constitution, ConstitutionError, GovError } from "../gov/index.ts";
import type { Tx } from "../kv/index.ts";
import { fromUtf8, Tables as GovTables, SINGLETON_KEY as SINGLETON, scanMap } from "../ledger/index.ts";
import type { JsEngine } from "./engine.ts";
import { JsError } from "./errors.ts";
import { type JsLimits, MAX_STACK_BYTES } from "./limits.ts";
import type { JsHooks, KvAccess } from "./types.ts";

const CONSTITUTION_MODULE = "constitution.js";

/**
 * Limits of every constitution and ballot call, sized from measurement (docs/governance.md
 * "Limits"): the largest call Coco's tests make (CCF's validate of a set_js_app with CCF's
 * logging app) counts 2,317 ticks and a heap under 1 MiB; the largest proposal a node accepts by
 * default (a 1 MiB body: set_js_app with 3,032 endpoints) 308,627 ticks (31 steps) and 4 MiB.
 * The budget is 16 times the latter; neither limit reads the clock.
 */
export const GOVERNANCE_LIMITS: Readonly<JsLimits> = Object.freeze({
  heapBytes: 64 * 1024 * 1024,
  stackBytes: MAX_STACK_BYTES,
  steps: 500,
});
const BALLOT_MODULE = "ballot.js";

/** The KV of one transaction, as the sandbox sees it. */
export function txKv(tx: Tx): KvAccess {
  return {
    get: (map, key) => tx.map(map).get(key),
    set: (map, key, value) => tx.map(map).set(key, value),
    delete: (map, key) => tx.map(map).delete(key),
    entries: (map) => scanMap(tx, map),
    size: (map) => tx.map(map).size(),
    clear: (map) => {
      for (const [key] of scanMap(tx, map)) tx.map(map).delete(key);
    },
  };
}

function constitutionSource(tx: Tx): string {
  const source = tx.map(GovTables.constitution).get(SINGLETON);
  if (!source) throw new GovError(503, "ServiceNotReady", "the service has no constitution yet");
  return fromUtf8(source);
}

/**
 * The constitution stored in `public:ccf.gov.constitution` (one module exporting validate,
 * resolve and apply, as CCF stores it), run in the QuickJS sandbox. Ballots are modules of their
 * own exporting `vote`. `hooksFor` gives apply the service operations, bound to its transaction.
 */
export function jsConstitution(
  engine: JsEngine,
  hooksFor: (tx: Tx) => JsHooks,
  limits?: Partial<JsLimits>,
): Constitution {
  const run = (
    tx: Tx,
    modules: Record<string, string>,
    entry: string,
    fn: string,
    args: unknown[],
    readOnly: boolean,
  ) => {
    try {
      return engine.call({
        modules,
        entry,
        fn,
        args,
        kv: txKv(tx),
        readOnly,
        // Governance results depend on the proposal, the votes and the store, never on what an
        // earlier call left behind: every call gets a fresh instance of the module.
        isolated: true,
        ...(readOnly ? {} : { hooks: hooksFor(tx) }),
        limits: { ...GOVERNANCE_LIMITS, ...limits },
      });
    } catch (e) {
      if (e instanceof JsError) throw new ConstitutionError(`${fn}: ${e.message}`, e.trace);
      throw e;
    }
  };
  const constitution = (tx: Tx) => ({ [CONSTITUTION_MODULE]: constitutionSource(tx) });
  return {
    validate: (tx, proposal) =>
      run(tx, constitution(tx), CONSTITUTION_MODULE, "validate", [proposal], true) as {
        valid: boolean;
        description?: string;
      },
    resolve: (tx, proposal, proposerId, votes) =>
      run(
        tx,
        constitution(tx),
        CONSTITUTION_MODULE,
        "resolve",
        [proposal, proposerId, votes],
        true,
      ) as string,
    apply: (tx, proposal, proposalId) => {
      run(tx, constitution(tx), CONSTITUTION_MODULE, "apply", [proposal, proposalId], false);
    },
    vote: (tx, ballot, proposal, proposerId) =>
      run(tx, { [BALLOT_MODULE]: ballot }, BALLOT_MODULE, "vote", [proposal, proposerId], true) === true,
  };
}

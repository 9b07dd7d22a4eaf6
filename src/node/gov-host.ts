import type { Logger } from "pino";
import type { Constitution, GovEffects, GovHost } from "../gov/index.ts";
import { type JsEngine, jsConstitution } from "../js/index.ts";
import { withJsAppChecks } from "../jsapp/index.ts";
import type { Tx } from "../kv/index.ts";
import type { CommitOutcome } from "../ledger/index.ts";
import type { Environment } from "./env.ts";
import { serviceHooks } from "./gov-hooks.ts";
import { SHARES_INPUTS } from "./recovery-shares.ts";

/** What hosting governance takes from the node. */
export interface GovHostDeps {
  readonly log: Logger;
  readonly env: Environment;
  readonly jsEngine: JsEngine;
  readonly isPrimary: boolean;
  begin(): Tx;
  commit(tx: Tx): CommitOutcome;
  /** The service identity, for the certificates governance endorses. */
  service(): { certPem: string; privateKeyPem: string };
  latestSecretVersion(): number;
  rekey(): void;
  snapshot(): void;
  ledgerChunk(): void;
  refreshRecoveryShares(): void;
}

/**
 * Governance as it runs on a node: signed requests become transactions on the primary, the
 * constitution runs in the node's QuickJS engine with the service hooks, and what an accepted
 * proposal asked for is carried out once it commits.
 */
export function nodeGovHost(deps: GovHostDeps): GovHost {
  return {
    log: deps.log,
    get isPrimary() {
      return deps.isPrimary;
    },
    begin: () => deps.begin(),
    commit: (tx) => deps.commit(tx),
    nowSeconds: () => Math.floor(deps.env.now() / 1000),
    constitution: (effects) => constitution(deps, effects),
    carryOut: (effects) => carryOut(deps, effects),
    sharesInputs: SHARES_INPUTS,
  };
}

function constitution(deps: GovHostDeps, effects: GovEffects): Constitution {
  const constitution = jsConstitution(deps.jsEngine, (tx) =>
    serviceHooks(tx, effects, {
      service: deps.service(),
      latestSecretVersion: () => deps.latestSecretVersion(),
      now: () => deps.env.now(),
      randomBytes: (n) => deps.env.randomBytes(n),
    }),
  );
  // Coco refuses JS apps whose code does not load, whichever constitution is in force.
  return withJsAppChecks(constitution, deps.jsEngine);
}

/** Carries out what an accepted proposal asked for, after it committed. */
function carryOut(deps: GovHostDeps, effects: GovEffects): void {
  if (effects.rekey) deps.rekey();
  if (effects.snapshot) deps.snapshot();
  // A rekey refreshes the shares itself (they must open the newest secret).
  if (effects.refreshRecoveryShares && !effects.rekey) deps.refreshRecoveryShares();
  if (effects.ledgerChunk) deps.ledgerChunk();
}

import type { Logger } from "pino";
import type { Constitution, GovEffects, GovHost } from "../gov/index.ts";
import { type JsEngine, jsConstitution } from "../js/index.ts";
import { withJsAppChecks } from "../jsapp/index.ts";
import type { Tx } from "../kv/index.ts";
import type { CommitOutcome, LedgerState } from "../ledger/index.ts";
import type { Environment } from "./env.ts";
import { serviceHooks } from "./gov-hooks.ts";
import type { NodeIdentity } from "./identity.ts";
import { SHARES_INPUTS } from "./recovery-shares.ts";
import type { IdentityStore } from "./sealed-identity.ts";

/** What hosting governance takes from the node. */
export interface GovHostDeps {
  readonly log: Logger;
  readonly env: Environment;
  readonly jsEngine: JsEngine;
  readonly isPrimary: boolean;
  readonly state: LedgerState;
  readonly identity: NodeIdentity;
  readonly identityStore: IdentityStore;
  readonly recoveryShares: { refresh(): Promise<unknown> };
  readonly signing: { sign(): void };
  readonly snapshots: { request(): void };
  readonly files: { requestChunk(): void };
  commit(tx: Tx): CommitOutcome;
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
    begin: () => deps.state.store.begin(),
    commit: (tx) => deps.commit(tx),
    nowSeconds: () => Math.floor(deps.env.now() / 1000),
    constitution: (effects) => constitution(deps, effects),
    carryOut: (effects) => carryOut(deps, effects),
    sharesInputs: SHARES_INPUTS,
  };
}

/** Rotates the ledger secret (governance's `trigger_ledger_rekey`); answers the rekey's seqno. */
export function rekey(
  deps: Omit<GovHostDeps, "jsEngine" | "snapshots" | "files" | "isPrimary" | "commit">,
): number {
  const { state, identity, identityStore, env, log, signing } = deps;
  const seqno = state.rekey(env.randomBytes(32), (version, newKey) => {
    identity.ledgerSecrets.push({ version, key: Buffer.from(newKey).toString("base64") });
    identityStore.save(identity);
  });
  signing.sign();
  log.info({ seqno }, "rotated the ledger secret");
  // The shares must open the newest secret (older ones are chained to it in the ledger).
  void deps.recoveryShares.refresh();
  return seqno;
}

function constitution(deps: GovHostDeps, effects: GovEffects): Constitution {
  const constitution = jsConstitution(deps.jsEngine, (tx) =>
    serviceHooks(tx, effects, {
      service: { certPem: deps.identity.serviceCertPem, privateKeyPem: deps.identity.servicePrivateKeyPem },
      latestSecretVersion: () => deps.state.secrets.current.version,
      now: () => deps.env.now(),
      randomBytes: (n) => deps.env.randomBytes(n),
    }),
  );
  // Coco refuses JS apps whose code does not load, whichever constitution is in force.
  return withJsAppChecks(constitution, deps.jsEngine);
}

/** Carries out what an accepted proposal asked for, after it committed. */
function carryOut(deps: GovHostDeps, effects: GovEffects): void {
  if (effects.rekey) rekey(deps);
  if (effects.snapshot) {
    deps.snapshots.request();
    deps.signing.sign();
  }
  // A rekey refreshes the shares itself (they must open the newest secret).
  if (effects.refreshRecoveryShares && !effects.rekey) void deps.recoveryShares.refresh();
  if (effects.ledgerChunk) {
    deps.files.requestChunk();
    deps.signing.sign();
  }
}

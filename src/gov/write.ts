import type { Logger } from "pino";
import type { Tx } from "../kv/index.ts";
import type { CommitOutcome } from "../ledger/index.ts";
import { ApplyFailed, type Constitution, recordApplyFailure } from "./proposals.ts";
import { GovError } from "./request-error.ts";
import { acceptSignedRequest } from "./requests.ts";
import type { GovMessageType } from "./signed-request.ts";
import type { VerifiedGovRequest } from "./verify-request.ts";

/** Service operations a constitution's apply asks for; carried out once the proposal commits. */
export interface GovEffects {
  rekey: boolean;
  refreshRecoveryShares: boolean;
  snapshot: boolean;
  ledgerChunk: boolean;
}

/** What governance needs from the node it runs on. */
export interface GovHost {
  readonly log: Logger;
  readonly isPrimary: boolean;
  begin(): Tx;
  commit(tx: Tx): CommitOutcome;
  nowSeconds(): number;
  constitution(effects: GovEffects): Constitution;
  /** Tables whose change calls for new recovery shares. */
  readonly sharesInputs: readonly string[];
  /** Runs the effects an applied proposal asked for. */
  carryOut(effects: GovEffects): void;
}

export interface GovWriteResult<T> {
  result: T;
  seqno: number | null;
  view: number;
}

/** What a signed request expects to be: its type, and the proposal or member its path names. */
export interface GovExpectation {
  type: GovMessageType;
  proposalId?: string;
  memberId?: string;
}

/** The work a signed request does once verified and recorded, with the constitution at hand. */
export type GovWork<T> = (
  tx: Tx,
  request: VerifiedGovRequest,
  constitution: Constitution,
  effects: GovEffects,
) => T;

/** Runs signed governance requests on the node that hosts governance. */
export interface GovernanceWrite {
  write<T>(bytes: Uint8Array, expect: GovExpectation, work: GovWork<T>): GovWriteResult<T>;
}

const MAX_ATTEMPTS = 5;

/**
 * Runs one signed governance request as a transaction on the primary: the request is verified
 * and recorded (history, replay window), then `work` runs with the constitution. If the proposal
 * it accepts fails in apply, the transaction is redone without apply's writes and the proposal is
 * recorded as Failed. Conflicting transactions are retried.
 */
export function governanceWrite<T>(
  host: GovHost,
  bytes: Uint8Array,
  expect: GovExpectation,
  work: GovWork<T>,
): GovWriteResult<T> {
  if (!host.isPrimary) throw new GovError(503, "NotPrimary", "governance requests run on the primary");
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const effects: GovEffects = {
      rekey: false,
      refreshRecoveryShares: false,
      snapshot: false,
      ledgerChunk: false,
    };
    const nowSeconds = host.nowSeconds();
    let tx = host.begin();
    let result: T;
    try {
      const request = acceptSignedRequest(tx, bytes, { ...expect, nowSeconds });
      result = work(tx, request, host.constitution(effects), effects);
    } catch (e) {
      tx.abandon();
      if (!(e instanceof ApplyFailed)) throw e;
      host.log.warn({ proposalId: e.proposalId, reason: e.failure.reason }, "proposal failed in apply");
      tx = host.begin();
      acceptSignedRequest(tx, bytes, { ...expect, nowSeconds });
      result = recordApplyFailure(tx, e) as T;
      effects.rekey = effects.refreshRecoveryShares = effects.snapshot = effects.ledgerChunk = false;
    }
    // Changes to who holds shares, or how many are needed, call for new recovery shares.
    const written = new Set(tx.writeSet().map((m) => m.name));
    if (host.sharesInputs.some((name) => written.has(name))) effects.refreshRecoveryShares = true;
    const outcome = host.commit(tx);
    if (!outcome.ok) continue;
    if (outcome.seqno !== null) host.carryOut(effects);
    return {
      result,
      seqno: outcome.seqno,
      view: outcome.seqno === null ? 0 : (outcome as { view: number }).view,
    };
  }
  throw new GovError(503, "TransactionConflict", "the governance transaction kept conflicting; try again");
}

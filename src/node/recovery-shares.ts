import type { Logger } from "pino";
import type { Tx } from "../kv/index.ts";
import type { CommitOutcome, LedgerState } from "../ledger/index.ts";
import {
  Tables as GovTables,
  parseJsonBytes,
  readJson,
  SINGLETON_KEY as SINGLETON,
  scanMap,
  utf8,
  writeJson,
} from "../ledger/index.ts";
import { type IssuedRecoveryShares, issueRecoveryShares } from "../recovery/index.ts";

/** Where the service keeps its recovery shares (public: each share opens only with its member's key). */
export const RECOVERY_SHARES_TABLE = "public:ccf.internal.recovery_shares";

/** The record in RECOVERY_SHARES_TABLE: the shares, and which ledger secret they wrap. */
export interface RecoverySharesRecord extends IssuedRecoveryShares {
  ledger_secret_version: number;
}

/** Governance writes to these tables change who holds shares or how many are needed. */
export const SHARES_INPUTS = [
  GovTables.membersEncryptionKeys,
  GovTables.membersInfo,
  GovTables.serviceConfig,
  GovTables.serviceInfo,
];

export interface SharesHost {
  readonly log: Logger;
  isPrimary(): boolean;
  begin(): Tx;
  commit(tx: Tx): CommitOutcome;
  ledgerSecret(): { version: number; key: Uint8Array };
  randomBytes(n: number): Uint8Array;
}

const MAX_ATTEMPTS = 5;

/**
 * Issues recovery shares of the current ledger secret to every member with an encryption key,
 * at the service's recovery threshold, and records them on the ledger. Runs after the changes
 * that call for it (opening, rekey, member keys or threshold changed, a refresh proposal).
 * Splitting is asynchronous, so the transaction is re-run if the members changed meanwhile.
 */
export class RecoveryShares {
  private running: Promise<void> | undefined;
  private again = false;

  constructor(private readonly host: SharesHost) {}

  /** Asks for fresh shares; coalesces requests made while an issue is in flight. */
  refresh(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.issueOnce();
        } while (this.again);
      } catch (e) {
        this.host.log.error({ err: e }, "could not issue recovery shares");
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  private async issueOnce(): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (!this.host.isPrimary()) return;
      const tx = this.host.begin();
      // While a service is being recovered, the shares on the ledger are the lost service's: the
      // members need exactly those to bring its secret back. New ones come once it is open.
      const status = readJson<{ status?: string }>(tx, GovTables.serviceInfo, SINGLETON)?.status;
      if (status === "Recovering" || status === "WaitingForRecoveryShares") {
        tx.abandon();
        return;
      }
      const members = scanMap(tx, GovTables.membersEncryptionKeys).map(([id, key]) => ({
        id: new TextDecoder().decode(id),
        encryptionPublicKeyPem: new TextDecoder().decode(key),
      }));
      const present = members.filter((m) => tx.map(GovTables.membersInfo).has(utf8(m.id)));
      const threshold =
        readJson<{ recovery_threshold?: number }>(tx, GovTables.serviceConfig, SINGLETON)
          ?.recovery_threshold ?? 1;
      if (present.length === 0) {
        tx.abandon();
        this.host.log.warn(
          "no member has an encryption key: the service has no recovery shares and cannot be recovered",
        );
        return;
      }
      if (threshold > present.length) {
        tx.abandon();
        this.host.log.warn(
          { threshold, recoveryMembers: present.length },
          "the recovery threshold exceeds the recovery members; shares not issued",
        );
        return;
      }
      const secret = this.host.ledgerSecret();
      const issued = await issueRecoveryShares({
        ledgerSecret: secret.key,
        members: present,
        threshold,
        randomBytes: (n) => this.host.randomBytes(n),
      });
      const record: RecoverySharesRecord = { ...issued, ledger_secret_version: secret.version };
      writeJson(tx, RECOVERY_SHARES_TABLE, SINGLETON, record);
      const outcome = this.host.commit(tx);
      if (outcome.ok) {
        this.host.log.info(
          { members: present.length, threshold, secretVersion: secret.version },
          "issued recovery shares",
        );
        return;
      }
    }
    throw new Error("the recovery shares transaction kept conflicting");
  }
}

/**
 * A member's encrypted share as recorded at the commit point; undefined if it holds none there.
 * A share set written but not committed yet may be rolled back by a view change, and a share of
 * it would then open nothing any recovery accepts: until the new set commits, members are given
 * their share of the last committed set. The store keeps every version from the commit point on.
 */
export function committedShareOf(
  state: Pick<LedgerState, "store" | "commitSeqno">,
  memberId: string,
): string | undefined {
  const bytes = state.store.readAt(state.commitSeqno, RECOVERY_SHARES_TABLE, SINGLETON);
  if (!bytes) return undefined;
  const { shares } = parseJsonBytes<RecoverySharesRecord>(bytes);
  // Own keys only: a member id such as "constructor" names no share.
  const share = Object.hasOwn(shares, memberId) ? shares[memberId] : undefined;
  return typeof share === "string" ? share : undefined;
}

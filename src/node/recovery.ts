import type { Logger } from "pino";
import { aesGcmDecrypt } from "../crypto/index.ts";
import { GovError } from "../gov/index.ts";
import { Store, type StoreSnapshot, type Tx } from "../kv/index.ts";
import {
  type DecodedEntry,
  decryptEntry,
  jsonBytes,
  type LedgerSecret,
  LedgerSecrets,
  parseJsonBytes,
  type ServiceInfo,
  SINGLETON_KEY,
  Tables,
  utf8,
} from "../ledger/index.ts";
import { type IssuedRecoveryShares, RecoveryError, RecoveryShareCollector } from "../recovery/index.ts";
import type { LedgerState } from "./ledger-state.ts";
import { RECOVERY_SHARES_TABLE, type RecoverySharesRecord } from "./recovery-shares.ts";

/** Which recovery members have submitted a share (never the share itself). */
const RECOVERY_SUBMISSIONS = "public:ccf.internal.recovery_submissions";

/** What the recovery needs from the node that runs it. */
export interface RecoveryHost {
  readonly log: Logger;
  readonly state: LedgerState;
  /** Seals recovered ledger secrets into the node's identity. */
  keepSecrets(secrets: LedgerSecret[]): void;
  /** Commits a transaction of the node's own and signs it. */
  commitAndSign(tx: Tx): void;
  /** The private state is back and the service open: clean up, issue new shares. */
  finished(): void;
}

/**
 * A recovering node's part in bringing back a lost service's private state: it gathers the
 * recovery members' shares (each checked against its commitment), and at the threshold rebuilds
 * the newest ledger secret, unwinds the older ones, replays the private half of the surviving
 * ledger into the new service and opens it.
 */
export class RecoveryCoordinator {
  private readonly collector: RecoveryShareCollector;
  private readonly secretVersion: number;
  private completing = false;

  private constructor(
    private readonly host: RecoveryHost,
    /** The surviving ledger's signed prefix (seqnos 1..n), kept to replay its private half. */
    private readonly entries: DecodedEntry[],
    record: RecoverySharesRecord,
  ) {
    const { ledger_secret_version: version, ...issued } = record;
    this.collector = new RecoveryShareCollector(issued as IssuedRecoveryShares);
    this.secretVersion = version;
  }

  /** Starts from the shares recorded in the recovered ledger; undefined if it holds none. */
  static start(host: RecoveryHost, entries: DecodedEntry[]): RecoveryCoordinator | undefined {
    const raw = host.state.store.read(RECOVERY_SHARES_TABLE, SINGLETON_KEY);
    if (!raw) {
      host.log.error("the recovered ledger holds no recovery shares: its private state cannot be recovered");
      return undefined;
    }
    return new RecoveryCoordinator(host, entries, parseJsonBytes<RecoverySharesRecord>(raw));
  }

  /**
   * `POST /gov/recovery/members/{id}:recover`: a recovery member's decrypted share. The share is
   * never written anywhere; the ledger records that the member submitted one.
   */
  acceptShare(tx: Tx, memberId: string, payload: Uint8Array): { message: string } {
    const status = parseJsonBytes<ServiceInfo>(tx.map(Tables.serviceInfo).get(SINGLETON_KEY)!).status;
    if (status !== "WaitingForRecoveryShares") {
      throw new GovError(
        400,
        "ServiceNotWaitingForRecoveryShares",
        `the service is ${status}: it takes recovery shares only after members vote a recovered service open`,
      );
    }
    let share: unknown;
    try {
      share = (JSON.parse(new TextDecoder().decode(payload)) as { share?: unknown }).share;
    } catch {}
    if (typeof share !== "string" || share.length === 0) {
      throw new GovError(
        400,
        "InvalidInput",
        'a recovery share is {"share": "<base64 of the decrypted share>"}',
      );
    }
    let submission: ReturnType<RecoveryShareCollector["submit"]>;
    try {
      submission = this.collector.submit(memberId, share);
    } catch (e) {
      if (e instanceof RecoveryError) throw new GovError(400, e.code, e.message);
      throw e;
    }
    tx.map(RECOVERY_SUBMISSIONS).set(utf8(memberId), jsonBytes({ submitted: true }));
    if (submission.remaining === 0 && !this.completing) {
      this.completing = true;
      // After this transaction commits: rebuild the secret and restore the private state.
      setImmediate(() => {
        this.complete().catch((e) => {
          this.host.log.error({ err: e }, "could not complete the recovery");
          this.completing = false;
        });
      });
    }
    const restoring = submission.remaining === 0 ? "; restoring the private ledger" : "";
    return {
      message: `${submission.submitted}/${submission.threshold} recovery shares submitted${restoring}`,
    };
  }

  private async complete(): Promise<void> {
    const key = await this.collector.recover();
    const old = unwindLedgerSecrets(this.entries, { version: this.secretVersion, key });
    for (const secret of old.list()) this.host.state.secrets.add(secret.version, secret.key);
    this.host.keepSecrets(old.list());
    const maps = privateStateOf(this.entries, this.host.state.secrets);
    const tx = this.host.state.store.begin();
    for (const map of maps) for (const [k, v] of map.entries) tx.map(map.name).set(k, v);
    const info = parseJsonBytes<ServiceInfo>(tx.map(Tables.serviceInfo).get(SINGLETON_KEY)!);
    tx.map(Tables.serviceInfo).set(SINGLETON_KEY, jsonBytes({ ...info, status: "Open" }));
    this.host.commitAndSign(tx);
    this.host.log.info(
      { maps: maps.length, secrets: old.list().length },
      "recovered the private ledger; the service is open",
    );
    this.host.finished();
  }
}

interface HistoricalSecret {
  version: number;
  iv: string;
  encrypted_secret: string;
}

/**
 * Every ledger secret of the recovered ledger, from the newest one (which the shares open): each
 * rekey left the previous secret in the ledger, encrypted under the secret that replaced it.
 */
export function unwindLedgerSecrets(
  entries: DecodedEntry[],
  latest: { version: number; key: Uint8Array },
): LedgerSecrets {
  // The rekey transaction at seqno r records the secret it retires; its successor has version r + 1.
  const retiredBy = new Map<number, HistoricalSecret>();
  for (const entry of entries) {
    const value = entry.publicWriteSet
      .find((m) => m.name === Tables.historicalEncryptedLedgerSecret)
      ?.updates.at(-1)?.value;
    if (value) retiredBy.set(entry.seqno + 1, parseJsonBytes<HistoricalSecret>(value));
  }
  const secrets = new LedgerSecrets([latest]);
  let current = latest;
  for (let record = retiredBy.get(current.version); record; record = retiredBy.get(current.version)) {
    const key = aesGcmDecrypt(
      current.key,
      new Uint8Array(Buffer.from(record.iv, "base64")),
      new Uint8Array(Buffer.from(record.encrypted_secret, "base64")),
    );
    current = { version: record.version, key };
    secrets.add(current.version, current.key);
  }
  return secrets;
}

/** The private maps of the recovered ledger as of its last entry (every entry decrypted and replayed). */
export function privateStateOf(entries: DecodedEntry[], secrets: LedgerSecrets): StoreSnapshot["maps"] {
  const store = new Store();
  for (const entry of entries) store.apply(entry.seqno, decryptEntry(entry, secrets));
  return store.snapshot().maps.filter((m) => !m.name.startsWith("public:"));
}

import { aesGcmDecrypt } from "../crypto/index.ts";
import { Store, type StoreSnapshot } from "../kv/index.ts";
import { type DecodedEntry, decryptEntry, LedgerSecrets } from "../ledger/index.ts";
import { type IssuedRecoveryShares, RecoveryShareCollector } from "../recovery/index.ts";
import type { RecoverySharesRecord } from "./recovery-shares.ts";
import { parseJsonBytes, Tables } from "./tables.ts";

/** A recovering node's memory of the service it recovers, until the shares open its secret. */
export class RecoveryInProgress {
  readonly collector: RecoveryShareCollector;
  readonly secretVersion: number;
  /** Set once the threshold was reached and the private state is being restored. */
  completing = false;

  constructor(
    /** The surviving ledger's signed prefix (seqnos 1..lastSeqno), kept to replay its private half. */
    readonly entries: DecodedEntry[],
    record: RecoverySharesRecord,
  ) {
    const { ledger_secret_version: version, ...issued } = record;
    this.collector = new RecoveryShareCollector(issued as IssuedRecoveryShares);
    this.secretVersion = version;
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

import {
  endorseCertificateRequest,
  normalizePem,
  parseValidFrom,
  renewServiceCertificate,
} from "../crypto/index.ts";
import type { GovEffects } from "../gov/index.ts";
import type { JsHooks } from "../js/index.ts";
import type { Tx } from "../kv/index.ts";
import {
  jsonBytes,
  parseJsonBytes,
  type ServiceInfo,
  SINGLETON_KEY,
  scanMap,
  Tables,
  utf8,
} from "../ledger/index.ts";

/** JWT signing keys of the issuers governance trusts, by key id: `{issuer, jwk}`. */
const JWT_SIGNING_KEYS = "public:ccf.gov.jwt.public_signing_keys";

/**
 * What a constitution's apply may ask of the node (`ccf.node.*`, `ccf.network.*`, ...), bound to
 * the proposal's transaction. Service changes happen in that transaction; operations that must
 * follow the commit (rekey, snapshot, new shares, a ledger chunk) are noted in `effects`.
 */
export function serviceHooks(
  tx: Tx,
  effects: GovEffects,
  node: {
    service: { certPem: string; privateKeyPem: string };
    latestSecretVersion: () => number;
    /** Milliseconds since the epoch and random bytes, from the node's environment. */
    now: () => number;
    randomBytes: (n: number) => Uint8Array;
  },
): JsHooks {
  const text = (bytes: unknown) => new TextDecoder().decode(bytes as Uint8Array);
  // CCF's constitution passes valid_from through as given, or undefined for "now".
  const start = (validFrom: unknown): Date => {
    if (validFrom === undefined || validFrom === null) return new Date(node.now());
    if (typeof validFrom !== "string") throw new Error("valid_from must be a string such as 20261125000000Z");
    return parseValidFrom(validFrom);
  };
  const days = (validityDays: unknown): number => {
    if (typeof validityDays !== "number" || !Number.isInteger(validityDays) || validityDays < 1) {
      throw new Error("validity_period_days must be a positive integer");
    }
    return validityDays;
  };
  return {
    node: {
      transitionServiceToOpen: (previous: unknown, next: unknown) => {
        const raw = tx.map(Tables.serviceInfo).get(SINGLETON_KEY);
        if (!raw) throw new Error("service information is missing");
        const info = parseJsonBytes<ServiceInfo>(raw);
        if (normalizePem(text(next)) !== normalizePem(info.cert)) {
          throw new Error("next_service_identity is not this service's certificate");
        }
        if (info.status === "Recovering") {
          // A recovered service opens in two steps: this vote, then the recovery members' shares.
          if (
            previous === undefined ||
            normalizePem(text(previous)) !== normalizePem(info.previous_service_identity ?? "")
          ) {
            throw new Error(
              "opening a recovered service needs previous_service_identity: the certificate of the service it recovers",
            );
          }
          tx.map(Tables.serviceInfo).set(
            SINGLETON_KEY,
            jsonBytes({ ...info, status: "WaitingForRecoveryShares" }),
          );
        } else if (info.status === "Opening") {
          tx.map(Tables.serviceInfo).set(SINGLETON_KEY, jsonBytes({ ...info, status: "Open" }));
        }
      },
      triggerLedgerRekey: () => {
        effects.rekey = true;
      },
      triggerRecoverySharesRefresh: () => {
        effects.refreshRecoveryShares = true;
      },
      triggerSnapshot: () => {
        effects.snapshot = true;
      },
      triggerLedgerChunk: () => {
        effects.ledgerChunk = true;
      },
      triggerACMERefresh: () => {
        throw new Error("Coco does not obtain certificates through ACME");
      },
    },
    network: {
      getLatestLedgerSecretSeqno: () => node.latestSecretVersion(),
      generateEndorsedCertificate: (csr: unknown, validFrom: unknown, validityDays: unknown) => {
        if (typeof csr !== "string") throw new Error("the certificate signing request must be a PEM string");
        return endorseCertificateRequest({
          service: node.service,
          csrPem: csr,
          validFrom: start(validFrom),
          validityDays: days(validityDays),
          serial: node.randomBytes(16),
        });
      },
      generateNetworkCertificate: (validFrom: unknown, validityDays: unknown) =>
        renewServiceCertificate({
          service: node.service,
          validFrom: start(validFrom),
          validityDays: days(validityDays),
          serial: node.randomBytes(16),
        }),
    },
    // Coco compiles app modules when it loads them; there is no bytecode cache to refresh.
    refreshAppBytecodeCache: () => undefined,
    setJwtPublicSigningKeys: (issuer: unknown, _metadata: unknown, jwks: unknown) => {
      const keys = (jwks as { keys?: Array<{ kid?: unknown }> } | undefined)?.keys ?? [];
      for (const key of keys) {
        if (typeof key.kid !== "string") throw new Error("every JWK needs a kid");
        tx.map(JWT_SIGNING_KEYS).set(utf8(key.kid), jsonBytes({ issuer, jwk: key }));
      }
    },
    removeJwtPublicSigningKeys: (issuer: unknown) => {
      for (const [kid, value] of scanMap(tx, JWT_SIGNING_KEYS)) {
        if (parseJsonBytes<{ issuer: unknown }>(value).issuer === issuer)
          tx.map(JWT_SIGNING_KEYS).delete(kid);
      }
    },
  };
}

import { normalizePem } from "../crypto/index.ts";
import { scanMap } from "../gov/index.ts";
import type { JsHooks } from "../js/index.ts";
import type { Tx } from "../kv/index.ts";
import type { GovEffects } from "./governance.ts";
import { jsonBytes, parseJsonBytes, type ServiceInfo, SINGLETON_KEY, Tables, utf8 } from "./tables.ts";

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
  node: { serviceCertPem: string; latestSecretVersion: () => number },
): JsHooks {
  const text = (bytes: unknown) => new TextDecoder().decode(bytes as Uint8Array);
  return {
    node: {
      transitionServiceToOpen: (previous: unknown, next: unknown) => {
        if (normalizePem(text(next)) !== normalizePem(node.serviceCertPem)) {
          throw new Error("next_service_identity is not this service's certificate");
        }
        const raw = tx.map(Tables.serviceInfo).get(SINGLETON_KEY);
        if (!raw) throw new Error("service information is missing");
        const info = parseJsonBytes<ServiceInfo>(raw);
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
      generateEndorsedCertificate: () => {
        throw new Error(
          "Coco nodes keep no certificate signing request: node certificates are issued when a node joins",
        );
      },
      generateNetworkCertificate: () => {
        throw new Error("renewing the service certificate is not supported yet");
      },
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

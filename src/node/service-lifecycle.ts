import { rmSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import { GovError } from "../gov/index.ts";
import type { Tx } from "../kv/index.ts";
import {
  type DecodedEntry,
  jsonBytes,
  NotPrimaryError,
  parseJsonBytes,
  type ServiceInfo,
  SINGLETON_KEY,
  Tables,
} from "../ledger/index.ts";
import type { Booted } from "./boot.ts";
import type { Environment } from "./env.ts";
import { addLedgerSecrets } from "./identity.ts";
import { NodeError } from "./node-error.ts";
import { RecoveryCoordinator } from "./recovery.ts";
import type { RecoveryShares } from "./recovery-shares.ts";
import type { IdentityStore } from "./sealed-identity.ts";
import { beginRecoveredService, createService, type ServiceHost } from "./service.ts";
import { RECOVERY_FILE } from "./state-files.ts";

/** What the service's lifecycle needs of its node. */
export interface LifecycleHost extends Omit<ServiceHost, "nodePort"> {
  readonly env: Environment;
  readonly log: Logger;
  readonly identityStore: IdentityStore;
  readonly recoveryShares: RecoveryShares;
  nodePort(): number;
  /** Signs now (a signature transaction covering everything appended). */
  sign(): void;
}

/**
 * The service as this node sees it through its lifecycle: created by its first node, opened (by
 * vote, or at `openAtNodes` trusted nodes for tests and benchmarks), or recovered from a lost
 * service's ledger, waiting for the recovery members' shares (service.ts writes the transactions).
 */
export class ServiceLifecycle {
  /** Set while this node recovers a lost service and waits for the recovery members' shares. */
  private recovery: RecoveryCoordinator | undefined;
  /**
   * A recovering node signs nothing before its first transaction (`beginRecovery`) records it as
   * the recovered service's trusted node: backups and auditors accept only signatures by nodes the
   * ledger already trusts.
   */
  recoveryNotBegun: boolean;

  constructor(
    private readonly host: LifecycleHost,
    recovering: boolean,
  ) {
    this.recoveryNotBegun = recovering;
  }

  private serviceHost(): ServiceHost {
    const { config, identity, state } = this.host;
    return {
      config,
      identity,
      state,
      nodePort: this.host.nodePort(),
      mustCommit: (tx) => this.host.mustCommit(tx),
    };
  }

  /**
   * How this start begins: a fresh node writes the genesis transaction (durable before anything
   * else happens); a recovering, joining or restarting node says what it found.
   */
  async begin(booted: Booted, durable: () => Promise<void>): Promise<void> {
    const { log, state, identity } = this.host;
    const { recoveredFrom } = booted;
    if (recoveredFrom) {
      log.warn(
        { seqno: recoveredFrom.lastSeqno, view: state.view },
        "recovering a service from its ledger: public state replayed; private state waits for the recovery members' shares",
      );
    } else if (booted.fresh) {
      createService(this.serviceHost(), booted.ownSnp);
      log.info({ nodeId: identity.nodeId }, "created a new service");
      await durable();
    } else if (booted.entries.length === 0) {
      log.info("waiting for the primary to replicate the ledger");
    } else {
      log.info(
        { seqno: state.lastSeqno, view: state.view, snapshot: booted.snapshotSeqno || null },
        "restarted from the ledger",
      );
    }
  }

  /** Service info as this node's store has it; null before a joining node has received it. */
  infoOrNull(): ServiceInfo | null {
    const bytes = this.host.state.store.read(Tables.serviceInfo, SINGLETON_KEY);
    return bytes ? parseJsonBytes<ServiceInfo>(bytes) : null;
  }

  info(): ServiceInfo {
    const info = this.infoOrNull();
    if (!info) throw new NodeError("service info is missing from the store");
    return info;
  }

  /**
   * With `openAtNodes` set (tests, benchmarks), a new service opens once that many nodes are
   * trusted. The threshold is the one genesis recorded, so that a joiner elected primary before
   * the service opened opens it too (its own config has no `openAtNodes`); the node's own setting
   * serves a ledger whose genesis predates the record.
   */
  openWhenReady(): void {
    const info = this.infoOrNull();
    if (info?.status !== "Opening") return;
    const threshold = info.open_at_nodes ?? this.host.config.openAtNodes;
    if (threshold === 0 || this.host.state.trustedNodes().length < threshold) return;
    try {
      this.open();
    } catch (e) {
      if (!(e instanceof NotPrimaryError)) throw e;
    }
  }

  /**
   * Opens the service without a vote: only for services configured with `openAtNodes` (tests,
   * benchmarks). Members open a service with `transition_service_to_open`.
   */
  open(): void {
    const info = this.info();
    if (info.status === "Open") return;
    const tx = this.host.state.store.begin();
    tx.map(Tables.serviceInfo).set(SINGLETON_KEY, jsonBytes({ ...info, status: "Open" }));
    this.host.mustCommit(tx);
    this.host.state.emitSignature();
    this.host.log.info("service is open");
    void this.host.recoveryShares.refresh();
  }

  /**
   * A recovering node, once primary of the recovered ledger: the new service identity, endorsing
   * the previous one, then waiting for the recovery members' shares.
   */
  async beginRecovery(
    recoveredFrom: NonNullable<Booted["recoveredFrom"]>,
    entries: DecodedEntry[],
  ): Promise<void> {
    const { host } = this;
    await beginRecoveredService(this.serviceHost(), host.env, recoveredFrom.previousServiceCertPem);
    this.recoveryNotBegun = false;
    host.sign();
    host.log.info(
      { previousServiceCert: recoveredFrom.previousServiceCertPem.slice(0, 64) },
      "started a recovered service",
    );
    this.recovery = RecoveryCoordinator.start(
      {
        log: host.log,
        state: host.state,
        keepSecrets: (secrets) => {
          addLedgerSecrets(host.identity, secrets);
          host.identityStore.save(host.identity);
        },
        commitAndSign: (tx) => {
          host.mustCommit(tx);
          host.sign();
        },
        finished: () => {
          this.recovery = undefined;
          rmSync(join(host.config.dir, RECOVERY_FILE), { force: true });
          void host.recoveryShares.refresh();
        },
      },
      entries,
    );
  }

  /** `POST /gov/recovery/members/{id}:recover`, while this node recovers a lost service. */
  acceptRecoveryShare(tx: Tx, memberId: string, payload: Uint8Array): { message: string } {
    if (!this.recovery) {
      throw new GovError(400, "ServiceNotWaitingForRecoveryShares", "this node is not recovering a service");
    }
    return this.recovery.acceptShare(tx, memberId, payload);
  }
}

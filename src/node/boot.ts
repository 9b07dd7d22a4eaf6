import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import type { Entry, PersistedLog } from "../consensus/index.ts";
import { p384PrivateKey } from "../crypto/index.ts";
import {
  type DecodedEntry,
  EntryType,
  LedgerFiles,
  LedgerSecrets,
  type LedgerSink,
  LedgerState,
  ledgerDirArchive,
} from "../ledger/index.ts";
import {
  type AttestationView,
  attestationProvider,
  attestationView,
  type ProviderSeams,
} from "../tee/index.ts";
import type { NodeConfig } from "./config.ts";
import type { Environment } from "./env.ts";
import { createIdentity, type NodeIdentity, serviceKid, writeFileAtomic } from "./identity.ts";
import type { JoinPeer } from "./join.ts";
import { joinService } from "./join-client.ts";
import { NodeError } from "./node-error.ts";
import type { Replica } from "./replica.ts";
import { IdentityStore } from "./sealed-identity.ts";
import { readCertFile } from "./service.ts";
import { loadUsableSnapshot } from "./snapshots.ts";
import { RECOVERY_FILE, StateFiles } from "./state-files.ts";

/**
 * Where new entries go. Until consensus runs (a new service's genesis) they are written straight
 * to the files and kept to seed consensus's log; from then on they go through the replica.
 */
export class EntrySink implements LedgerSink {
  replica: Replica | undefined;
  /** Entries made before consensus starts (a new service's genesis). */
  bootstrap: Entry[] = [];

  constructor(private readonly files: LedgerFiles) {}

  append(seqno: number, frame: Uint8Array, isSignature: boolean, config?: string[]): boolean {
    if (this.replica) return this.replica.append(seqno, frame, isSignature, config);
    this.files.append(seqno, frame, isSignature);
    this.bootstrap.push({ seqno, view: 0, isSignature, data: frame, ...(config ? { config } : {}) });
    return true;
  }
}

/** A node's state as read from its directory, before consensus and the network start. */
export interface Booted {
  identity: NodeIdentity;
  /** Seals the identity with the platform's key (later saves: rekey, recovery, renewal). */
  identityStore: IdentityStore;
  /** Nodes named in the join answer; used until the replicated `nodes.info` lists them. */
  joinPeers: JoinPeer[];
  /** The first node of an SNP service attested itself: its report seeds the join policy. */
  ownSnp: Extract<AttestationView, { format: "snp" }> | undefined;
  files: LedgerFiles;
  sink: EntrySink;
  stateFiles: StateFiles;
  state: LedgerState;
  /** The entries restored from the files (a recovering node's: its signed prefix). */
  entries: DecodedEntry[];
  /** Seqno of the snapshot this start restored from; 0 if it replayed the whole ledger. */
  snapshotSeqno: number;
  recoveredFrom: { previousServiceCertPem: string; lastSeqno: number } | undefined;
  /** A new service: no ledger and no service to join. */
  fresh: boolean;
}

/**
 * Opens a node's directory: its identity (loaded, made by joining, or created), its ledger files
 * and snapshot, and the ledger state restored from them (or, recovering a lost service, the
 * public state of a surviving ledger).
 */
export async function bootNode(
  config: NodeConfig,
  env: Environment,
  log: Logger,
  seams: { attestationSeams?: ProviderSeams },
): Promise<Booted> {
  mkdirSync(config.dir, { recursive: true, mode: 0o700 });
  const ledgerDir = join(config.dir, "ledger");
  const stateFiles = new StateFiles(config.dir, log);
  const { sealing, attestation } = config;
  const store = await IdentityStore.open({
    dir: config.dir,
    sealing,
    attestation,
    env,
    log,
    ...(seams.attestationSeams ? { seams: seams.attestationSeams } : {}),
  });
  const newIdentity = !store.exists;
  if (newIdentity && !config.recover && readdirSafe(ledgerDir).length > 0) {
    throw new NodeError(`${ledgerDir} holds a ledger but ${config.dir} has no node identity to read it with`);
  }
  const recovering = config.recover !== null && newIdentity;
  if (config.recover && !newIdentity && stateFiles.recovering) {
    throw new NodeError(
      "this node stopped while recovering, before the recovery members restored the ledger secret; start the recovery again from a fresh copy of the surviving ledger",
    );
  }
  let identity: NodeIdentity;
  let joinPeers: JoinPeer[] = [];
  if (!newIdentity) identity = store.load();
  else if (config.join)
    ({ identity, peers: joinPeers } = await joinService(config, log, seams.attestationSeams));
  else identity = await createIdentity(env, config.rpc.host, config.curve);

  // The first node of an SNP service attests itself before it opens or writes anything.
  const ownSnp =
    newIdentity && !config.join && !config.recover
      ? await ownSnpAttestation(config, identity.nodeCertPem, seams.attestationSeams)
      : undefined;
  const opened = await LedgerFiles.open(ledgerDir, { chunkSize: config.ledger.chunkSize });
  let recoveredFrom: Booted["recoveredFrom"];
  if (recovering) {
    recoveredFrom = await prepareRecovery(config, opened, identity);
    writeFileAtomic(
      join(config.dir, RECOVERY_FILE),
      JSON.stringify({
        last_seqno: recoveredFrom.lastSeqno,
        previous_service_cert: recoveredFrom.previousServiceCertPem,
      }),
    );
  }
  if (newIdentity) store.save(identity);
  writeFileAtomic(config.serviceCertFile, identity.serviceCertPem, 0o644);

  const secrets = new LedgerSecrets(
    identity.ledgerSecrets.map((s) => ({
      version: s.version,
      key: new Uint8Array(Buffer.from(s.key, "base64")),
    })),
  );
  if (opened.truncatedBytes > 0) {
    log.warn({ bytes: opened.truncatedBytes }, "truncated a torn write at the end of the ledger");
  }
  const files = opened.ledger;
  // Entries after the last signature stay: they may have been acknowledged to a primary, and
  // their commit evidence (checked on restore) shows they came from a node holding the secret.
  const entries = recoveredFrom
    ? opened.entries.filter((e) => e.seqno <= recoveredFrom.lastSeqno)
    : opened.entries;
  const keys = {
    nodeId: identity.nodeId,
    nodeCertPem: identity.nodeCertPem,
    nodePrivateKey: p384PrivateKey(identity.nodePrivateKeyPem),
    servicePrivateKey: p384PrivateKey(identity.servicePrivateKeyPem),
    serviceKid: serviceKid(identity.serviceCertPem),
  };
  const sink = new EntrySink(files);
  const snapshot = recoveredFrom
    ? undefined
    : await loadUsableSnapshot(join(config.dir, "snapshots"), entries, files.firstSeqno, secrets, log);
  const state = recoveredFrom
    ? LedgerState.restorePublic({
        env,
        keys,
        secrets,
        sink,
        entries,
        previousServiceCertPem: recoveredFrom.previousServiceCertPem,
      })
    : LedgerState.restore({
        env,
        keys,
        secrets,
        sink,
        entries,
        snapshot,
        ledgerStart: files.firstSeqno,
        serviceCertPem: identity.serviceCertPem,
        commitSeqno: Math.max(stateFiles.readCommitHint(), files.committedSeqno),
      });
  // Receipts whose proofs left memory are rebuilt from the chunk files (src/ledger/receipts.ts).
  state.receiptWindow = config.ledger.receiptWindow;
  state.archive = ledgerDirArchive(ledgerDir);
  return {
    identity,
    identityStore: store,
    joinPeers,
    ownSnp,
    files,
    sink,
    stateFiles,
    state,
    entries,
    snapshotSeqno: snapshot?.snapshot.version ?? 0,
    recoveredFrom,
    fresh: entries.length === 0 && !config.join,
  };
}

/**
 * Readies a copied ledger for recovery: keeps its signed prefix (an unsigned tail cannot be
 * trusted), and gives the new service a ledger secret whose version follows it.
 */
async function prepareRecovery(
  config: NodeConfig,
  opened: Awaited<ReturnType<typeof LedgerFiles.open>>,
  identity: NodeIdentity,
): Promise<{ previousServiceCertPem: string; lastSeqno: number }> {
  const previousServiceCertPem = readCertFile(config.recover!.previousServiceCertFile);
  const lastSignature = [...opened.entries].reverse().find((e) => e.type === EntryType.Signature);
  if (!lastSignature || opened.entries[0]?.seqno !== 1) {
    throw new NodeError(
      `${join(config.dir, "ledger")} must hold a copy of a surviving node's whole ledger (from seqno 1, with at least one signature)`,
    );
  }
  if (opened.ledger.lastSeqno > lastSignature.seqno) await opened.ledger.truncate(lastSignature.seqno);
  identity.ledgerSecrets = identity.ledgerSecrets.map((s) => ({ ...s, version: lastSignature.seqno + 1 }));
  return { previousServiceCertPem, lastSeqno: lastSignature.seqno };
}

/**
 * The first node of a service on SEV-SNP attests itself before creating the service: its report
 * seeds the join policy. A node that cannot attest cannot start an SNP service.
 */
async function ownSnpAttestation(
  config: NodeConfig,
  nodeCertPem: string,
  seams: ProviderSeams | undefined,
): Promise<Extract<AttestationView, { format: "snp" }> | undefined> {
  if (config.attestation.platform !== "snp") return undefined;
  try {
    const view = attestationView(
      await attestationProvider(config.attestation, seams ?? {}).attest(nodeCertPem),
    );
    return view.format === "snp" ? view : undefined;
  } catch (e) {
    throw new NodeError(
      `cannot attest this node, so it cannot start a service on SEV-SNP: ${(e as Error).message}`,
    );
  }
}

function readdirSafe(dir: string): string[] {
  try {
    return existsSync(dir) ? readdirSync(dir) : [];
  } catch {
    return [];
  }
}

/**
 * The log consensus starts from. A new service's starts with its genesis entry, which carries
 * the first configuration (this node alone); a restarted node's starts at its snapshot (or the
 * beginning), with the nodes trusted there; a recovering node continues the old ledger alone,
 * from the old commit point. Entries made before consensus (genesis) are handed over once.
 */
export function consensusLog(booted: Booted): PersistedLog {
  const { state, recoveredFrom, snapshotSeqno, sink } = booted;
  const bootstrap = sink.bootstrap;
  sink.bootstrap = [];
  if (recoveredFrom) {
    const seqno = recoveredFrom.lastSeqno;
    return { start: { seqno, view: state.viewOf(seqno), config: [booted.identity.nodeId] }, entries: [] };
  }
  if (booted.fresh) return { start: { seqno: 0, view: 0, config: [] }, entries: bootstrap };
  return {
    start: {
      seqno: snapshotSeqno,
      view: snapshotSeqno === 0 ? 0 : state.viewOf(snapshotSeqno),
      config: state.startConfig,
    },
    entries: booted.entries
      .filter((e) => e.seqno > snapshotSeqno)
      .map((e) => {
        const config = state.configAfter(e.seqno);
        return {
          seqno: e.seqno,
          view: e.view,
          isSignature: e.type === EntryType.Signature,
          data: e.frame,
          ...(config ? { config } : {}),
        };
      }),
  };
}

import type { Logger } from "pino";
import { Raft } from "../consensus/index.ts";
import type { LedgerFiles, LedgerState } from "../ledger/index.ts";
import type { NodeChannels } from "../net/index.ts";
import { type Booted, consensusLog } from "./boot.ts";
import type { CommitTrace } from "./commit-trace.ts";
import type { NodeConfig } from "./config.ts";
import type { Environment } from "./env.ts";
import { eventLoopScheduler, Replica, type ReplicaHooks } from "./replica.ts";
import type { StateFiles } from "./state-files.ts";

/** What starting consensus needs of its node. */
export interface ConsensusHost {
  nodeId: string;
  config: NodeConfig;
  env: Environment;
  log: Logger;
  state: LedgerState;
  files: LedgerFiles;
  stateFiles: StateFiles;
  channels: NodeChannels;
  hooks: Omit<ReplicaHooks, "send" | "saveHardState">;
  /** Benchmarks only (commit-trace.ts): sees every consensus message sent and received. */
  trace?: CommitTrace | undefined;
}

/**
 * Hands the ledger to consensus (its log: see consensusLog) and connects the replica to the
 * node-to-node channels. The node wires the rest before it calls `run`.
 */
export function createReplica(host: ConsensusHost, booted: Booted): Replica {
  const { recoveredFrom, snapshotSeqno } = booted;
  const { state, env, config, channels, stateFiles } = host;
  const committedSeqno = state.commitSeqno;
  const raft = new Raft({
    id: host.nodeId,
    random: () => new DataView(env.randomBytes(4).buffer).getUint32(0) / 2 ** 32,
    log: consensusLog(booted),
    hardState: stateFiles.readHardState(),
    ...(!recoveredFrom && committedSeqno > snapshotSeqno ? { commitSeqno: committedSeqno } : {}),
    electionTicksMin: config.consensus.electionTicksMin,
    electionTicksMax: config.consensus.electionTicksMax,
  });
  const trace = host.trace;
  const replica = new Replica(
    raft,
    state,
    host.files,
    {
      ...host.hooks,
      send: trace
        ? (to, message) => {
            trace.sent(to, message);
            channels.send(to, message);
          }
        : (to, message) => channels.send(to, message),
      saveHardState: (hard) => stateFiles.saveHardState(hard),
    },
    host.log,
    eventLoopScheduler,
  );
  channels.onMessage(
    trace
      ? (from, message) => {
          trace.received(from, message);
          replica.step(from, message);
        }
      : (from, message) => replica.step(from, message),
  );
  return replica;
}

/**
 * Runs the replica's first step; true when this node is alone in its configuration and campaigned
 * at once (it need not wait out an election timeout).
 */
export function runReplica(replica: Replica, nodeId: string): boolean {
  const configs = replica.raft.activeConfigs();
  const alone =
    configs.length > 0 &&
    configs.every((c) => c.length === 1 && c[0] === nodeId) &&
    replica.raft.campaignNow();
  replica.process();
  return alone;
}

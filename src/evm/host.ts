import type { Executor } from "../apps/index.ts";
import { createEvmExecutor } from "./executor.ts";

/** The part of a running node the EVM reads: seqno -> TxID. */
export interface EvmNodeFacts {
  state: { txIdOf(seqno: number): string };
}

/**
 * The EVM executor with its host wired to a node that is started after it: the executor exists
 * before `runNode` (which takes the executors), and `bind` hands it the node once running.
 */
export function evmExecutorFor(env: { now(): number; randomBytes(n: number): Uint8Array }): {
  executor: Executor;
  bind(node: EvmNodeFacts): void;
} {
  let node: EvmNodeFacts | undefined;
  const executor = createEvmExecutor({
    txIdOf: (seqno) => node?.state.txIdOf(seqno),
    now: () => env.now(),
    randomBytes: (n) => env.randomBytes(n),
  });
  return {
    executor,
    bind(n) {
      node = n;
    },
  };
}

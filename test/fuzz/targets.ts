import type { FuzzTarget } from "./harness.ts";
import { httpTarget } from "./http.ts";
import { nodePortTarget } from "./node-port.ts";
import { ledgerTargets } from "./targets-ledger.ts";
import { wireTargets } from "./targets-wire.ts";

/** Every parser target that needs no running node. */
export async function parserTargets(): Promise<FuzzTarget<never>[]> {
  return [...ledgerTargets(), ...(await wireTargets())];
}

/** The parser targets, then the ones that start a node (HTTP, garbage on the node-to-node port). */
export async function allTargets(): Promise<FuzzTarget<never>[]> {
  return [
    ...(await parserTargets()),
    httpTarget() as FuzzTarget<never>,
    nodePortTarget() as FuzzTarget<never>,
  ];
}

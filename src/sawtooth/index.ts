/** Hyperledger Sawtooth on Coco: the processor protocol, Sawtooth's REST API, batch execution. */
export { InvalidBatchError, parseBatchList } from "./batches.ts";
export { SAWTOOTH_BASE, SawtoothExecutor, type SawtoothSettings } from "./executor.ts";
export { type NodeLike, nodeHost, type SawtoothHost } from "./host.ts";
export { BATCHERS_MAP, STATE_MAP } from "./tables.ts";

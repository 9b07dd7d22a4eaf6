export { boundAddresses } from "./accounts.ts";
export { DEFAULT_EVM_CONFIG, type EvmConfig, readEvmConfig } from "./config.ts";
export { createEvmExecutor, EVM_PATH } from "./executor.ts";
export { type EvmNodeFacts, evmExecutorFor } from "./host.ts";
export { EVM_MAPS } from "./maps.ts";
export type { EvmHost } from "./methods.ts";
export { HARDFORK, RANDOM_MAX_BYTES, RANDOM_PRECOMPILE } from "./vm.ts";

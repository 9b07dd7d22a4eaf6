export { readSignatureEntry, type SignatureRecord, Tables } from "../ledger/index.ts";
export { type AuditReport, auditLedger } from "./audit.ts";
export { ConfigError, loadConfig, type NodeConfig, parseConfig } from "./config.ts";
export { type Environment, realEnvironment } from "./env.ts";
export { IdentityError } from "./identity.ts";
export { createLogger } from "./logger.ts";
export { COCO_VERSION, CocoNode, NodeError } from "./node.ts";
export { type RunningNode, runNode } from "./run.ts";
export { hasIdentity, loadIdentity } from "./sealed-identity.ts";

export { READ_HEADER, TX_HEADER, WAIT_HEADER } from "./answers.ts";
export type {
  ConsensusView,
  JoinAnswer,
  NodeRecord,
  NodeStatusView,
  RpcNode,
  RpcSettings,
  ServiceRecord,
} from "./port.ts";
export { createRpcServer } from "./server.ts";
export { CLIENT_TLS_POLICY } from "./tls-policy.ts";

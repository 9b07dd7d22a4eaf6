export { TX_HEADER, WAIT_HEADER } from "./commit-wait.ts";
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

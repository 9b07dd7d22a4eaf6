export { TX_HEADER, WAIT_HEADER } from "./commit-wait.ts";
export { createRpcServer } from "./server.ts";

export {
  type JsonReceipt,
  type VerifyResult,
  verifyCoseReceipt,
  verifyJsonReceipt,
} from "../crypto/index.ts";
export { type ClientOptions, CocoClient, CocoClientError, type Response, type TxStatus } from "./client.ts";
export { GovClient, type GovClientOptions } from "./gov.ts";

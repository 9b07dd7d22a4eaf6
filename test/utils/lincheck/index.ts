/** Coco's linearizability checker (test utilities): public face. */

export type { CasInput, CasOutput, CasState, CasValue } from "./cas-register.ts";
export { casRegisterModel } from "./cas-register.ts";
export { check } from "./check.ts";
export { HistoryParseError, LincheckError } from "./errors.ts";
export { eventsToOperations, operationsToEvents } from "./history.ts";
export { type JepsenOperation, parseJepsenLog } from "./jepsen.ts";
export { partitionByKey } from "./keyed.ts";
export { type KvOperation, parseKvLog } from "./kv-log.ts";
export type { KvInput, KvOutput, KvState } from "./kv-model.ts";
export { kvModel } from "./kv-model.ts";
export type { KvRegisterInput, KvRegisterOutput, KvRegisterState } from "./kv-register.ts";
export { kvRegisterModel } from "./kv-register.ts";
export type {
  CheckOptions,
  CheckResult,
  CounterExample,
  Event,
  History,
  Model,
  Operation,
  Verdict,
} from "./types.ts";

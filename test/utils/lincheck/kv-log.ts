/**
 * Parser for the KV vector histories (../shared/vectors/linearizability/kv/FORMAT.md), one EDN map
 * per line, timestamps are line numbers:
 *
 *   {:process P, :type :invoke|:ok, :f :get|:put|:append, :key "K", :value nil|"S"}
 *
 * Beyond the vectors, `:fail` (no effect: the operation is left out) and `:info` (unknown outcome:
 * stays open) are accepted, and an invoke never completed stays open with an unknown outcome.
 */
import type { KvInput, KvOutput } from "./kv-model.ts";
import { parseProcessLog } from "./process-log.ts";
import type { Operation } from "./types.ts";

const LINE =
  /^\{:process (\d+), :type (:invoke|:ok|:fail|:info), :f (:get|:put|:append), :key "([^"\\]*)", :value (nil|"[^"\\]*"|:\S+)\}$/;
const SHAPE = '{:process P, :type :invoke|:ok, :f :get|:put|:append, :key "K", :value nil|"S"}';

export type KvOperation = Operation<KvInput, KvOutput>;

export function parseKvLog(text: string, source = "history"): KvOperation[] {
  return parseProcessLog<KvInput, KvOutput>(text, source, (line, lineNo, fail) => {
    const m = LINE.exec(line) ?? fail(`expected ${SHAPE}, got ${JSON.stringify(line.slice(0, 100))}`);
    const [, processText = "", type = "", f = "", key = "", rawValue = ""] = m;
    const process = Number(processText);
    if (!Number.isSafeInteger(process)) fail(`process number ${processText} is too large`);
    const value = rawValue.startsWith('"') ? rawValue.slice(1, -1) : rawValue === "nil" ? null : undefined;
    const op = f.slice(1) as KvInput["op"];

    if (type === ":invoke") {
      return {
        process,
        invoke: (): KvInput => {
          if (op === "get") {
            if (value !== null) fail(`a get is invoked with :value nil, got ${rawValue}`);
            return { op, key };
          }
          if (typeof value !== "string") fail(`${f} is invoked with a string value, got ${rawValue}`);
          return { op, key, value: value as string };
        },
      };
    }
    return {
      process,
      complete: (input) => {
        if (input.op !== op || input.key !== key) {
          fail(
            `process ${process} invoked ${input.op} of key "${input.key}" but completes ${op} of "${key}"`,
          );
        }
        if (type === ":fail") return undefined; // definitely no effect
        if (type === ":info") return { output: { status: "unknown" }, at: Number.POSITIVE_INFINITY };
        if (op === "get") {
          if (typeof value !== "string") fail(`a completed get carries the string it read, got ${rawValue}`);
          return { output: { status: "ok", value: value as string }, at: lineNo };
        }
        return { output: { status: "ok" }, at: lineNo };
      },
    };
  });
}

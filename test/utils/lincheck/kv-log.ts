/**
 * Parser for the KV vector histories (../shared/vectors/linearizability/kv/FORMAT.md), one EDN map
 * per line, timestamps are line numbers:
 *
 *   {:process P, :type :invoke|:ok, :f :get|:put|:append, :key "K", :value nil|"S"}
 *
 * Beyond the vectors, `:fail` (no effect: the operation is left out) and `:info` (unknown outcome:
 * stays open) are accepted, and an invoke never completed stays open with an unknown outcome.
 */
import { HistoryParseError } from "./errors.ts";
import type { KvInput, KvOutput } from "./kv-model.ts";
import type { Operation } from "./types.ts";

const LINE =
  /^\{:process (\d+), :type (:invoke|:ok|:fail|:info), :f (:get|:put|:append), :key "([^"\\]*)", :value (nil|"[^"\\]*"|:\S+)\}$/;
const SHAPE = '{:process P, :type :invoke|:ok, :f :get|:put|:append, :key "K", :value nil|"S"}';

export type KvOperation = Operation<KvInput, KvOutput>;

export function parseKvLog(text: string, source = "history"): KvOperation[] {
  const ops: KvOperation[] = [];
  const open = new Map<number, { input: KvInput; call: number; clientId: number }>();
  for (const [index, raw] of text.split("\n").entries()) {
    const lineNo = index + 1;
    const line = raw.replace(/\r$/, "");
    if (line.trim() === "") continue;
    const fail = (problem: string): never => {
      throw new HistoryParseError(source, lineNo, problem);
    };
    const m = LINE.exec(line) ?? fail(`expected ${SHAPE}, got ${JSON.stringify(line.slice(0, 100))}`);
    const [, processText = "", type = "", f = "", key = "", rawValue = ""] = m;
    const process = Number(processText);
    if (!Number.isSafeInteger(process)) fail(`process number ${processText} is too large`);
    const value = rawValue.startsWith('"') ? rawValue.slice(1, -1) : rawValue === "nil" ? null : undefined;
    const op = f.slice(1) as KvInput["op"];

    if (type === ":invoke") {
      const pending = open.get(process);
      if (pending !== undefined) {
        fail(`process ${process} invokes again while its call from line ${pending.call} is open`);
      }
      let input: KvInput;
      if (op === "get") {
        if (value !== null) fail(`a get is invoked with :value nil, got ${rawValue}`);
        input = { op, key };
      } else {
        if (typeof value !== "string") fail(`${f} is invoked with a string value, got ${rawValue}`);
        input = { op, key, value: value as string };
      }
      open.set(process, { input, call: lineNo, clientId: process });
      continue;
    }
    const pending = open.get(process) ?? fail(`process ${process} completes an operation it never invoked`);
    if (pending.input.op !== op || pending.input.key !== key) {
      fail(
        `process ${process} invoked ${pending.input.op} of key "${pending.input.key}" but completes ${op} of "${key}"`,
      );
    }
    open.delete(process);
    if (type === ":fail") continue; // definitely no effect
    let output: KvOutput = { status: "ok" };
    let at = lineNo;
    if (type === ":info") {
      output = { status: "unknown" };
      at = Number.POSITIVE_INFINITY;
    } else if (op === "get") {
      if (typeof value !== "string") fail(`a completed get carries the string it read, got ${rawValue}`);
      output = { status: "ok", value: value as string };
    }
    ops.push({ ...pending, output, return: at });
  }
  for (const pending of open.values()) {
    ops.push({ ...pending, output: { status: "unknown" }, return: Number.POSITIVE_INFINITY });
  }
  return ops.sort((a, b) => a.call - b.call);
}

/**
 * Parser for Jepsen client logs of a single compare-and-set register (the etcd vectors; see
 * ../shared/vectors/linearizability/jepsen-etcd/FORMAT.md). Timestamps are line numbers.
 *
 *   INFO  jepsen.util - <process> <:invoke|:ok|:fail|:info> <:read|:write|:cas> <value>
 *
 * Outcomes: `:ok` succeeded; `:fail` of a CAS definitely failed; `:fail` of a read is a time-out
 * (unknown result, returns there); `:fail` of a write had no effect, so the write is left out;
 * `:info`, and any invoke never completed, may or may not have taken effect: it stays open
 * (return time Infinity) with an unknown output.
 */
import type { CasInput, CasOutput } from "./cas-register.ts";
import { type Fail, parseProcessLog } from "./process-log.ts";
import type { Operation } from "./types.ts";

const LINE = /^INFO\s+jepsen\.util\s+-\s+(\d+)\s+(:\S+)\s+(:\S+)\s+(.*?)\s*$/;
const TYPES = new Set([":invoke", ":ok", ":fail", ":info"]);
const FUNCTIONS = new Set([":read", ":write", ":cas"]);
const INT = /^-?\d+$/;
const PAIR = /^\[\s*(-?\d+)\s+(-?\d+)\s*\]$/;

export type JepsenOperation = Operation<CasInput, CasOutput>;

export function parseJepsenLog(text: string, source = "history"): JepsenOperation[] {
  return parseProcessLog<CasInput, CasOutput>(text, source, (line, lineNo, fail) => {
    const shape = '"INFO  jepsen.util - <process> <type> <f> <value>"';
    const m = LINE.exec(line) ?? fail(`expected ${shape}, got ${JSON.stringify(cut(line))}`);
    const [, processText = "", type = "", f = "", value = ""] = m;
    const process = Number(processText);
    if (!Number.isSafeInteger(process)) fail(`process number ${processText} is too large`);
    if (!TYPES.has(type)) fail(`type must be :invoke, :ok, :fail or :info, got ${type}`);
    if (!FUNCTIONS.has(f)) fail(`f must be :read, :write or :cas, got ${f}`);

    if (type === ":invoke") return { process, invoke: () => parseInput(f, value, fail) };
    return {
      process,
      complete: (input) => {
        if (input.op !== f.slice(1)) fail(`process ${process} invoked :${input.op} but completes ${f}`);
        return completion(input, type, value, lineNo, fail);
      },
    };
  });
}

/** What a completion line means for the operation; undefined if the operation is to be left out. */
function completion(
  input: CasInput,
  type: string,
  value: string,
  lineNo: number,
  fail: Fail,
): { output: CasOutput; at: number } | undefined {
  if (type === ":info") return { output: { status: "unknown" }, at: Number.POSITIVE_INFINITY };
  switch (input.op) {
    case "read":
      if (type === ":fail") return { output: { status: "unknown" }, at: lineNo };
      if (value === "nil") return { output: { status: "ok", value: null }, at: lineNo };
      if (!INT.test(value)) fail(`a read returns an integer or nil, got ${JSON.stringify(value)}`);
      return { output: { status: "ok", value: Number(value) }, at: lineNo };
    case "write":
      if (type === ":fail") return undefined; // definitely not applied: it cannot have affected anyone
      if (value !== String(input.value)) fail(`write completes with ${value} but wrote ${input.value}`);
      return { output: { status: "ok" }, at: lineNo };
    case "cas": {
      const pair = PAIR.exec(value) ?? fail(`a CAS completes with [A B], got ${JSON.stringify(value)}`);
      if (Number(pair[1]) !== input.from || Number(pair[2]) !== input.to) {
        fail(`CAS completes with ${value} but was invoked with [${input.from} ${input.to}]`);
      }
      return { output: { status: type === ":ok" ? "ok" : "fail" }, at: lineNo };
    }
  }
}

function parseInput(f: string, value: string, fail: Fail): CasInput {
  switch (f) {
    case ":read":
      if (value !== "nil") fail(`a read is invoked with nil, got ${JSON.stringify(value)}`);
      return { op: "read" };
    case ":write":
      if (!INT.test(value)) fail(`a write is invoked with an integer, got ${JSON.stringify(value)}`);
      return { op: "write", value: Number(value) };
    default: {
      const pair = PAIR.exec(value) ?? fail(`a CAS is invoked with [A B], got ${JSON.stringify(value)}`);
      return { op: "cas", from: Number(pair[1]), to: Number(pair[2]) };
    }
  }
}

function cut(s: string): string {
  return s.length > 80 ? `${s.slice(0, 80)}...` : s;
}

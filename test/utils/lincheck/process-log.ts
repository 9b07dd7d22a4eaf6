/**
 * What the Jepsen-style history parsers share: a log of lines numbered from 1 (the line number is
 * the timestamp), each one process invoking an operation or completing the one it has open. This
 * pairs them: a process has at most one call open, a completion needs an open call, and a call never
 * completed stays open (return time Infinity) with an unknown output. The format's own parser reads
 * each line and decides what a completion means.
 */
import { HistoryParseError } from "./errors.ts";
import type { Operation } from "./types.ts";

/** Throws a HistoryParseError for the line being read. */
export type Fail = (problem: string) => never;

/** One line of the log, read by the format's parser. */
export type LogLine<Input, Output> =
  | {
      process: number;
      /** What the process calls; run only once the process is known to have no call open. */
      invoke: () => Input;
    }
  | {
      process: number;
      /**
       * Checks the completion against the open call's input (failing if it completes another
       * operation) and gives its output and return time, or undefined to leave the operation out.
       */
      complete: (input: Input) => { output: Output; at: number } | undefined;
    };

export function parseProcessLog<Input, Output>(
  text: string,
  source: string,
  readLine: (line: string, lineNo: number, fail: Fail) => LogLine<Input, Output>,
): Operation<Input, Output | { status: "unknown" }>[] {
  const ops: Operation<Input, Output | { status: "unknown" }>[] = [];
  const open = new Map<number, { input: Input; call: number; clientId: number }>();
  for (const [index, raw] of text.split("\n").entries()) {
    const lineNo = index + 1;
    const line = raw.replace(/\r$/, "");
    if (line.trim() === "") continue;
    const fail: Fail = (problem) => {
      throw new HistoryParseError(source, lineNo, problem);
    };
    const event = readLine(line, lineNo, fail);
    const process = event.process;
    const pending = open.get(process);
    if ("invoke" in event) {
      if (pending !== undefined) {
        fail(`process ${process} invokes again while its call from line ${pending.call} is open`);
      }
      open.set(process, { input: event.invoke(), call: lineNo, clientId: process });
      continue;
    }
    if (pending === undefined) fail(`process ${process} completes an operation it never invoked`);
    const end = event.complete(pending.input);
    open.delete(process);
    if (end !== undefined) ops.push({ ...pending, output: end.output, return: end.at });
  }
  for (const pending of open.values()) {
    ops.push({ ...pending, output: { status: "unknown" }, return: Number.POSITIVE_INFINITY });
  }
  return ops.sort((a, b) => a.call - b.call);
}

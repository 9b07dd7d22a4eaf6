/**
 * `npm run lincheck -- --format jepsen|kv [--timeout <ms>] <history file>`
 *
 * Prints "linearizable" (exit 0) or "not linearizable" with a counter-example (exit 1). Exits 2
 * when the time budget runs out before a verdict, or on bad flags or a bad file.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { casRegisterModel } from "./cas-register.ts";
import { check } from "./check.ts";
import { LincheckError } from "./errors.ts";
import { parseJepsenLog } from "./jepsen.ts";
import { parseKvLog } from "./kv-log.ts";
import { kvModel } from "./kv-model.ts";
import type { CheckResult, Model, Operation } from "./types.ts";

const USAGE = `usage: npm run lincheck -- --format jepsen|kv [--timeout <ms>] <history file>

  --format jepsen   Jepsen client log of one compare-and-set register (etcd tests)
  --format kv       EDN get/put/append log of a string key-value map, checked key by key
  --timeout <ms>    give up with exit code 2 after this long (default 60000)

Prints "linearizable" (exit 0) or "not linearizable" and a counter-example (exit 1).
Exit 2: timed out, or bad arguments or input.`;

class UsageError extends Error {}

function main(argv: string[]): number {
  let args: ReturnType<typeof parse>;
  try {
    args = parse(argv);
  } catch (e) {
    process.stderr.write(`lincheck: ${(e as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (args === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  // npm runs scripts from the package root; resolve the path against where the user typed it.
  const path = resolve(process.env.INIT_CWD ?? process.cwd(), args.file);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a directory" : (e as Error).message;
    process.stderr.write(`lincheck: cannot read ${path}: ${why}\n`);
    return 2;
  }
  const started = performance.now();
  let outcome: { count: number; result: CheckResult<unknown, unknown, unknown> };
  try {
    outcome =
      args.format === "jepsen"
        ? checkFile(casRegisterModel, parseJepsenLog, text, args.file, args.timeoutMs)
        : checkFile(kvModel, parseKvLog, text, args.file, args.timeoutMs);
  } catch (e) {
    process.stderr.write(`lincheck: ${(e as Error).message}\n`);
    return 2;
  }
  const { count, result } = outcome;
  const ms = Math.round(performance.now() - started);
  const stats = `${count} operations, ${result.partitions} partition(s), ${result.steps} search steps, ${ms} ms`;
  switch (result.result) {
    case "ok":
      process.stdout.write(`linearizable\n${stats}\n`);
      return 0;
    case "illegal":
      process.stdout.write(`not linearizable\n${stats}\n\n${result.counterExample?.text ?? ""}\n`);
      return 1;
    case "unknown":
      process.stdout.write(`unknown\n${stats}\n`);
      process.stderr.write(`lincheck: no verdict within ${args.timeoutMs} ms; try a larger --timeout\n`);
      return 2;
  }
}

function checkFile<S, I, O>(
  model: Model<S, I, O>,
  parser: (text: string, source: string) => Operation<I, O>[],
  text: string,
  file: string,
  timeoutMs: number,
): { count: number; result: CheckResult<S, I, O> } {
  const ops = parser(text, file);
  if (ops.length === 0) throw new LincheckError(`${file} holds no operations`);
  return { count: ops.length, result: check(model, ops, { timeoutMs }) };
}

function parse(argv: string[]): "help" | { format: "jepsen" | "kv"; timeoutMs: number; file: string } {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      format: { type: "string" },
      timeout: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) return "help";
  const format = values.format;
  if (format === undefined) throw new UsageError("--format is required (jepsen or kv)");
  if (format !== "jepsen" && format !== "kv")
    throw new UsageError(`--format must be jepsen or kv, got "${format}"`);
  let timeoutMs = 60_000;
  if (values.timeout !== undefined) {
    timeoutMs = Number(values.timeout);
    if (!/^\d+$/.test(values.timeout) || timeoutMs <= 0) {
      throw new UsageError(
        `--timeout must be a positive whole number of milliseconds, got "${values.timeout}"`,
      );
    }
  }
  if (positionals.length !== 1) {
    throw new UsageError(`expected exactly one history file, got ${positionals.length}`);
  }
  return { format, timeoutMs, file: positionals[0]! };
}

process.exitCode = main(process.argv.slice(2));

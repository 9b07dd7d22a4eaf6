/**
 * Network set-up for e2e tests: `coco sandbox --nodes <n>` in a new directory, waited on until it
 * is open, and the nodes it names in network.json. The Network (harness.ts) takes over from here.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MAIN, reservePorts } from "../helpers/cli.ts";
import { childrenOf, live, signal, tail } from "./processes.ts";
import type { NetNode } from "./types.ts";
import { SandboxExited, waitUntil } from "./waits.ts";

/** The TypeScript loader as a URL, so node processes start from any working directory. */
export const TSX = import.meta.resolve("tsx");
const READY_TIMEOUT_MS = 60_000;

export interface StartedSandbox {
  dir: string;
  sandbox: ChildProcess;
  nodes: NetNode[];
}

/**
 * Starts the sandbox and waits until it says it is open; with `console`, its web console too (on
 * the port after the nodes'), else `--no-console`. On failure its processes are killed and the
 * error carries the end of its log.
 */
export async function startSandbox(
  nodes: number,
  opts: { console?: boolean; readyTimeoutMs?: number } = {},
): Promise<StartedSandbox> {
  const dir = mkdtempSync(join(tmpdir(), "coco-e2e-"));
  const port = await reservePorts(nodes * 2 + 1);
  const consoleArgs = opts.console ? ["--console-port", String(port + nodes * 2)] : ["--no-console"];
  const logPath = join(dir, "sandbox.log");
  const fd = openSync(logPath, "a");
  const sandbox = spawn(
    process.execPath,
    // The tests kill and restart nodes themselves: the sandbox must not restart them too.
    [
      "--import",
      TSX,
      MAIN,
      "sandbox",
      "--dir",
      dir,
      "--nodes",
      String(nodes),
      "--port",
      String(port),
      "--no-restart",
      ...consoleArgs,
    ],
    { cwd: dir, stdio: ["ignore", fd, fd] },
  );
  closeSync(fd);
  if (sandbox.pid !== undefined) live.add(sandbox.pid);
  let exited: number | null | undefined;
  sandbox.once("exit", (code) => {
    exited = code;
  });
  try {
    await waitUntil("the sandbox to open", opts.readyTimeoutMs ?? READY_TIMEOUT_MS, () => {
      if (readFileSync(logPath, "utf8").includes("Ctrl-C stops the network")) return true;
      if (exited !== undefined) throw new SandboxExited(exited);
      return false;
    });
  } catch (e) {
    for (const pid of [...childrenOf(sandbox.pid ?? -1), sandbox.pid ?? -1]) signal(pid, "SIGKILL");
    throw new Error(`${(e as Error).message}\n${tail(logPath)}`);
  }
  const file = JSON.parse(readFileSync(join(dir, "network.json"), "utf8")) as {
    nodes: Array<{ id: string; rpc_address: string; pid: number; ledger_dir: string; config: string }>;
  };
  const list = file.nodes.map((n, i) => ({
    name: `node${i}`,
    id: n.id,
    rpc: n.rpc_address,
    config: n.config,
    ledgerDir: n.ledger_dir,
    pid: n.pid,
  }));
  for (const node of list) live.add(node.pid);
  return { dir, sandbox, nodes: list };
}

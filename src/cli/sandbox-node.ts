import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, createWriteStream, mkdirSync, openSync, type WriteStream } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Nodes run the code the sandbox runs: the compiled JavaScript under dist/ when `coco` was started
 * from there (`npm start`, `npx coco`), or the TypeScript under src/ through tsx (tests).
 */
const RUNNING_TS = import.meta.url.endsWith(".ts");
const MAIN = fileURLToPath(new URL(RUNNING_TS ? "./main.ts" : "./main.js", import.meta.url));

export interface NodeSlot {
  /** `node0`, `node1`, ... */
  name: string;
  /** `127.0.0.1:<port>` for clients. */
  rpc: string;
  /** `127.0.0.1:<port>` for other nodes. */
  nodeAddress: string;
  config: string;
  /** The node's log file, `<workspace>/<name>/node.log`. */
  logFile: string;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export function describeExit(exit: Exit): string {
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

export interface OutputMode {
  /** Discard the node's output (benchmarks). */
  quiet?: boolean;
  /** Also stream the node's log to this terminal, each line prefixed with the node's name. */
  verbose?: boolean;
  /** Extra Node.js flags (benchmarks: `--cpu-prof`). */
  nodeArgs?: string[];
}

/** One node process of the sandbox, which may be started again after it exits. */
export class SandboxNode {
  child: ChildProcess | undefined;
  /** Settles when the current process exits. */
  exited: Promise<Exit> = new Promise(() => {});
  startedAt = 0;
  private stream: WriteStream | undefined;

  constructor(
    readonly slot: NodeSlot,
    private readonly cwd: string,
    private readonly output: OutputMode,
  ) {}

  get pid(): number {
    return this.child?.pid ?? -1;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the node's process; with `waitFor`, the node loads its code, then waits for that file. */
  start(waitFor?: string): void {
    mkdirSync(dirname(this.slot.logFile), { recursive: true, mode: 0o700 });
    const args = [
      ...(this.output.nodeArgs ?? []),
      ...(RUNNING_TS ? ["--import", import.meta.resolve("tsx")] : []),
      MAIN,
      "start",
      "--config",
      this.slot.config,
      ...(waitFor ? ["--wait-for", waitFor] : []),
    ];
    let child: ChildProcess;
    if (this.output.quiet) {
      child = spawn(process.execPath, args, { cwd: this.cwd, stdio: "ignore" });
    } else if (this.output.verbose) {
      child = spawn(process.execPath, args, { cwd: this.cwd, stdio: ["ignore", "pipe", "pipe"] });
      this.stream ??= createWriteStream(this.slot.logFile, { flags: "a" });
      for (const from of [child.stdout!, child.stderr!]) this.tee(from);
    } else {
      // The log goes straight to its file: it keeps being written if the sandbox itself dies.
      const fd = openSync(this.slot.logFile, "a");
      child = spawn(process.execPath, args, { cwd: this.cwd, stdio: ["ignore", fd, fd] });
      closeSync(fd);
    }
    this.child = child;
    this.startedAt = Date.now();
    this.exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  }

  /** Asks the process to stop and waits for it. */
  async stop(): Promise<void> {
    if (this.running) this.child!.kill("SIGTERM");
    if (this.child) await this.exited;
    this.stream?.end();
  }

  private tee(from: NodeJS.ReadableStream): void {
    let partial = "";
    from.on("data", (chunk: Buffer) => {
      this.stream!.write(chunk);
      const lines = (partial + chunk.toString()).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) process.stdout.write(`${this.slot.name} | ${line}\n`);
    });
  }
}

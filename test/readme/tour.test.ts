/**
 * The README's tour, run exactly as written: a sandbox started as `npm start` starts it (the
 * compiled `coco`, in a fresh directory inside this checkout so `npx coco` finds this package),
 * then every command of the tour runs in one bash session, in order, from that directory, and
 * each output must have the shape the README shows (tour.ts). Only the ports differ: the tour's
 * 8000-8005 become ports reserved for this test, so it runs beside a user's own sandbox.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { budget } from "../e2e/waits.ts";
import { reservePorts } from "../helpers/cli.ts";
import { type Block, shapeProblem, tourBlocks } from "./tour.ts";

const ROOT = join(import.meta.dirname, "..", "..");
/** Idle machine's limits, stretched by the load when each wait starts (`budget`). */
const OPEN_TIMEOUT_MS = 180_000;
const COMMAND_TIMEOUT_MS = 120_000;

/** One bash process for the whole tour: `cd` and shell functions carry over between commands. */
class Shell {
  private readonly bash: ChildProcess;
  private buffer = "";
  private waiter: (() => void) | undefined;

  constructor(cwd: string) {
    this.bash = spawn("bash", ["--noprofile", "--norc"], { cwd, stdio: ["pipe", "pipe", "pipe"] });
    const take = (chunk: Buffer) => {
      this.buffer += chunk.toString();
      this.waiter?.();
    };
    this.bash.stdout!.on("data", take);
    this.bash.stderr!.on("data", take);
  }

  /** Runs one command; its output (stdout and stderr) and exit status. */
  async run(command: string): Promise<{ output: string; status: number }> {
    const marker = `@@tour-${Math.random().toString(36).slice(2)}@@`;
    this.buffer = "";
    this.bash.stdin!.write(`${command}\n__status=$?; printf '\\n${marker}%s\\n' "$__status"\n`);
    const deadline = Date.now() + budget(COMMAND_TIMEOUT_MS);
    for (;;) {
      const end = new RegExp(`\\n${marker}(\\d+)\\n`).exec(this.buffer);
      if (end) {
        const output = this.buffer.slice(0, end.index).replace(/\r/g, "").replace(/\n+$/, "");
        return { output, status: Number(end[1]) };
      }
      if (Date.now() > deadline) throw new Error(`no end of ${command} in time; so far:\n${this.buffer}`);
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, 1_000);
      });
    }
  }

  close(): void {
    this.bash.kill("SIGKILL");
  }
}

/** The tour's ports (8000 + i) as this test's (base + i), in commands and shown output alike. */
const withPorts = (text: string, base: number) =>
  text.replace(/127\.0\.0\.1:800([0-9])/g, (_, i: string) => `127.0.0.1:${base + Number(i)}`);

function waitForOpen(sandbox: ChildProcess, output: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`sandbox not open in time:\n${output()}`)),
      budget(OPEN_TIMEOUT_MS),
    );
    const check = () => {
      if (output().includes("What happens to the nodes from now on is reported here.")) {
        clearTimeout(timer);
        resolve();
      }
    };
    sandbox.stdout!.on("data", check);
    sandbox.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the sandbox exited (${code}):\n${output()}`));
    });
  });
}

test("the README's tour runs as written and shows what the README shows", {
  timeout: budget(900_000),
}, async () => {
  const blocks: Block[] = tourBlocks(readFileSync(join(ROOT, "README.md"), "utf8"));
  assert.equal(blocks[0]?.kind, "startup", "the tour starts with what npm start prints");
  const port = await reservePorts(6);
  mkdirSync(join(ROOT, "tmp"), { recursive: true });
  const root = mkdtempSync(join(ROOT, "tmp", "readme-tour-"));
  let printed = "";
  // `npm start`, on this test's ports: the installed command, compiled.
  const sandbox = spawn(
    process.execPath,
    [join(ROOT, "bin", "coco.js"), "sandbox", "--dir", "workspace", "--port", String(port)],
    // As on a fresh clone (no ../shared): Coco's own constitution, whose messages the tour shows.
    {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, COCO_SANDBOX_CONSTITUTION: "coco" },
    },
  );
  sandbox.stdout!.on("data", (chunk: Buffer) => (printed += chunk.toString()));
  sandbox.stderr!.on("data", (chunk: Buffer) => (printed += chunk.toString()));
  const shell = new Shell(root);
  try {
    await waitForOpen(sandbox, () => printed);
    for (const block of blocks) {
      if (block.kind === "startup") {
        // Steps that run at once (nodes joining) print in either order: each shown line must
        // match a printed line, in any order.
        for (const line of withPorts(block.text, port).split("\n")) {
          const problem = printed.split("\n").some((p) => shapeProblem(line, p) === undefined)
            ? undefined
            : `no line like ${JSON.stringify(line)}`;
          assert.equal(problem, undefined, `npm start's output: ${problem}\n--- printed:\n${printed}`);
        }
      } else if (block.kind === "setup") {
        for (const command of block.commands) {
          const { output, status } = await shell.run(command);
          assert.equal(status, 0, `${command}\n${output}`);
        }
      } else if (block.kind === "session") {
        for (const step of block.steps) {
          const command = withPorts(step.command, port);
          const { output, status } = await shell.run(command);
          assert.equal(status, 0, `$ ${command}\nexited ${status}:\n${output}`);
          const problem = shapeProblem(withPorts(step.output, port), output);
          assert.equal(problem, undefined, `$ ${command}\n${problem}\n--- its output:\n${output}`);
        }
      } else {
        // The receipt shown whole: the one the tour fetched has its fields.
        const receipt = readFileSync(join(root, "workspace", "receipt.json"), "utf8");
        const problem = shapeProblem(block.text, receipt);
        assert.equal(problem, undefined, `receipt.json: ${problem}\n${receipt}`);
      }
    }
  } finally {
    shell.close();
    if (sandbox.exitCode === null) {
      sandbox.removeAllListeners("exit");
      const exited = new Promise((resolve) => sandbox.once("exit", resolve));
      sandbox.kill("SIGINT");
      await exited;
    }
    rmSync(root, { recursive: true, force: true });
  }
});

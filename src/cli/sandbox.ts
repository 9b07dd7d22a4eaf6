import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Agent, request } from "undici";
import { CliError } from "./fail.ts";
import { keygen } from "./keygen.ts";

const MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));
/** The TypeScript loader, resolved from here so child nodes start from any working directory. */
const TSX = import.meta.resolve("tsx");
const READY_TIMEOUT_MS = 60_000;

export interface SandboxOptions {
  dir: string;
  nodes: number;
  port: number;
  /** Where to print what the user needs; stdout by default. */
  print?: (line: string) => void;
  /** Log format for the nodes. */
  logFormat?: "pretty" | "json";
}

export interface Sandbox {
  dir: string;
  network: NetworkFile;
  children: ChildProcess[];
  stop(): Promise<void>;
}

export interface NetworkFile {
  service_cert: string;
  primary: string;
  nodes: Array<{ id: string; rpc_address: string; pid: number; ledger_dir: string; config: string }>;
}

/** Starts a local network in `dir`, reusing its keys and ledger when they exist. */
export async function startSandbox(opts: SandboxOptions): Promise<Sandbox> {
  const print = opts.print ?? ((line: string) => console.log(line));
  if (opts.nodes !== 1) {
    throw new CliError(
      "this version of Coco runs single-node sandboxes; --nodes must be 1 until replication lands",
    );
  }
  const dir = resolve(opts.dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const [role, name] of [
    ["member", "member0"],
    ["user", "user0"],
  ] as const) {
    if (!existsSync(join(dir, `${name}_cert.pem`))) await keygen(role, name, dir);
  }
  const configPath = join(dir, "node0.config.json");
  const address = `127.0.0.1:${opts.port}`;
  writeFileSync(
    configPath,
    `${JSON.stringify(
      {
        dir: "node0",
        rpc: { address },
        serviceCertFile: "service_cert.pem",
        members: [{ cert: "member0_cert.pem" }],
        users: [{ cert: "user0_cert.pem" }],
        app: "logging",
        log: { level: "info", format: opts.logFormat ?? "pretty" },
      },
      null,
      2,
    )}\n`,
  );
  const child = spawn(process.execPath, ["--import", TSX, MAIN, "start", "--config", configPath], {
    stdio: ["ignore", "inherit", "inherit"],
    cwd: dir,
  });
  const exited = new Promise<number | null>((resolveExit) => child.once("exit", (code) => resolveExit(code)));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
  };
  try {
    const nodeId = await waitUntilReady(address, join(dir, "service_cert.pem"), exited);
    const network: NetworkFile = {
      service_cert: join(dir, "service_cert.pem"),
      primary: nodeId,
      nodes: [
        {
          id: nodeId,
          rpc_address: address,
          pid: child.pid ?? -1,
          ledger_dir: join(dir, "node0", "ledger"),
          config: configPath,
        },
      ],
    };
    writeFileSync(join(dir, "network.json"), `${JSON.stringify(network, null, 2)}\n`);
    printWelcome(print, dir, address);
    return { dir, network, children: [child], stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

async function waitUntilReady(
  address: string,
  certPath: string,
  exited: Promise<number | null>,
): Promise<string> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let failed: number | null | undefined;
  exited.then((code) => {
    failed = code;
  });
  while (Date.now() < deadline) {
    if (failed !== undefined)
      throw new CliError(`the node exited (code ${failed}) before it was ready; see its log above`);
    if (existsSync(certPath)) {
      const dispatcher = new Agent({ connect: { ca: readFileSync(certPath, "utf8") } });
      try {
        const ready = await request(`https://${address}/node/ready/app`, { dispatcher });
        await ready.body.dump();
        if (ready.statusCode === 204) {
          const state = await request(`https://${address}/node/state`, { dispatcher });
          return ((await state.body.json()) as { node_id: string }).node_id;
        }
      } catch {
        // not listening yet
      } finally {
        await dispatcher.close();
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new CliError(`the node at ${address} was not ready within ${READY_TIMEOUT_MS / 1000} s`);
}

function printWelcome(print: (line: string) => void, absDir: string, address: string): void {
  // Relative paths keep the printed commands short and copy-pasteable from where the user is.
  const rel = relative(process.cwd(), absDir);
  const dir = rel === "" ? "." : rel.startsWith("..") ? absDir : rel;
  const curl = `curl --cacert ${dir}/service_cert.pem --cert ${dir}/user0_cert.pem --key ${dir}/user0_privk.pem`;
  print("");
  print(`Coco sandbox is open: 1 node at https://${address}`);
  print(`  workspace     ${dir}`);
  print(`  service cert  ${dir}/service_cert.pem (pin this; nothing else)`);
  print(`  member        ${dir}/member0_cert.pem, ${dir}/member0_privk.pem`);
  print(`  user          ${dir}/user0_cert.pem, ${dir}/user0_privk.pem`);
  print(`  network       ${dir}/network.json`);
  print("");
  print("Write a private record, read it back, and fetch its receipt:");
  print(
    `  ${curl} -i -X PUT "https://${address}/app/log/private?id=1" -H 'content-type: application/json' -d '{"msg":"hello"}' -H 'x-coco-wait: commit'`,
  );
  print(`  ${curl} "https://${address}/app/log/private?id=1"`);
  print(
    `  ${curl} "https://${address}/app/receipt?transaction_id=<the x-ms-ccf-transaction-id above>" > receipt.json`,
  );
  print(`  npx coco receipt verify receipt.json --service-cert ${dir}/service_cert.pem`);
  print("");
  print("Ctrl-C stops the network; running the sandbox again resumes from its ledger.");
}

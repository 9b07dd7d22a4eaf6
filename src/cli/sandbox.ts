import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Agent, request } from "undici";
import type { ServiceCurve } from "../crypto/index.ts";
import { CONSTITUTION_FILES } from "../gov/index.ts";
import { installSandboxApp } from "./app-install.ts";
import { CliError } from "./fail.ts";
import { encryptionKeygen, keygen } from "./keygen.ts";
import { SandboxGovernance } from "./sandbox-gov.ts";

const MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));
/** The TypeScript loader, resolved from here so child nodes start from any working directory. */
const TSX = import.meta.resolve("tsx");
const READY_TIMEOUT_MS = 60_000;
/** CCF's own default constitution, when this checkout has the shared test vectors next to it. */
const CCF_CONSTITUTION = fileURLToPath(
  new URL("../../../shared/vectors/ccf/constitution-default/", import.meta.url),
);

/** The constitution files the sandbox's service starts with: CCF's default when present, else Coco's. */
function sandboxConstitution(): { files: string[]; name: string } {
  if (CONSTITUTION_FILES.every((f) => existsSync(join(CCF_CONSTITUTION, f)))) {
    return {
      files: CONSTITUTION_FILES.map((f) => join(CCF_CONSTITUTION, f)),
      name: "CCF's default constitution",
    };
  }
  return { files: [], name: "Coco's default constitution" };
}

export interface SandboxOptions {
  /** A JS app directory to build (where needed) and install by governance once the network opens. */
  jsApp?: string;
  dir: string;
  nodes: number;
  port: number;
  /** Where to print what the user needs; stdout by default. */
  print?: (line: string) => void;
  /** Log format for the nodes. */
  logFormat?: "pretty" | "json";
  /** Discard the nodes' logs instead of passing them through (for benchmarks). */
  quiet?: boolean;
  /** Extra Node.js flags for the node processes (benchmarks: `--cpu-prof`, which NODE_OPTIONS refuses). */
  nodeArgs?: string[];
  /** Serve Ethereum JSON-RPC at `/app/eth` on every node (docs/ethereum.md). */
  evm?: boolean;
  /** The curve of a new network's service and node keys (P-384 unless set; joiners follow it). */
  curve?: ServiceCurve;
  /** Serve Sawtooth: node i's transaction processors connect to tcp://127.0.0.1:(sawtoothPort + i). */
  sawtoothPort?: number;
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
  nodes: Array<{
    id: string;
    rpc_address: string;
    node_address: string;
    pid: number;
    ledger_dir: string;
    config: string;
  }>;
}

/** Starts a local network in `dir`, reusing its keys and ledger when they exist. */
export async function startSandbox(opts: SandboxOptions): Promise<Sandbox> {
  const print = opts.print ?? ((line: string) => console.log(line));
  if (opts.nodes > 9) throw new CliError("a sandbox runs at most 9 nodes");
  const dir = resolve(opts.dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const [role, name] of [
    ["member", "member0"],
    ["user", "user0"],
  ] as const) {
    if (!existsSync(join(dir, `${name}_cert.pem`))) await keygen(role, name, dir);
  }
  // member0 is also a recovery member: it holds a share of the ledger secret (docs/recovery.md).
  if (!existsSync(join(dir, "member0_enc_pubk.pem"))) encryptionKeygen("member0", dir);
  const certPath = join(dir, "service_cert.pem");
  // RPC ports from --port, then node-to-node ports right after them.
  const nodes = Array.from({ length: opts.nodes }, (_, i) => ({
    name: `node${i}`,
    rpc: `127.0.0.1:${opts.port + i}`,
    nodeAddress: `127.0.0.1:${opts.port + opts.nodes + i}`,
    config: join(dir, `node${i}.config.json`),
  }));
  await checkPortsFree(opts.port, opts.nodes * 2);
  const children: ChildProcess[] = [];
  const exits: Array<Promise<number | null>> = [];
  const stop = async () => {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    }
    await Promise.all(exits);
  };
  const first = nodes[0]!;
  const constitution = sandboxConstitution();
  try {
    for (const [i, node] of nodes.entries()) {
      const joining = i > 0;
      writeFileSync(
        node.config,
        `${JSON.stringify(
          {
            dir: node.name,
            rpc: { address: node.rpc },
            nodeAddress: node.nodeAddress,
            serviceCertFile: "service_cert.pem",
            ...(joining
              ? { join: { target: first.rpc, serviceCertFile: "service_cert.pem" } }
              : {
                  members: [{ cert: "member0_cert.pem", encryptionPublicKey: "member0_enc_pubk.pem" }],
                  users: [{ cert: "user0_cert.pem" }],
                  ...(opts.curve ? { curve: opts.curve } : {}),
                  ...(constitution.files.length > 0 ? { constitution: constitution.files } : {}),
                }),
            app: "logging",
            ...(opts.evm ? { evm: true } : {}),
            ...(opts.sawtoothPort === undefined
              ? {}
              : { sawtooth: { processorAddress: `tcp://127.0.0.1:${opts.sawtoothPort + i}` } }),
            log: { level: "info", format: opts.logFormat ?? "pretty" },
          },
          null,
          2,
        )}\n`,
      );
      const child = spawn(
        process.execPath,
        [...(opts.nodeArgs ?? []), "--import", TSX, MAIN, "start", "--config", node.config],
        {
          stdio: opts.quiet ? "ignore" : ["ignore", "inherit", "inherit"],
          cwd: dir,
        },
      );
      children.push(child);
      exits.push(new Promise((resolveExit) => child.once("exit", (code) => resolveExit(code))));
      // Joiners need the first node up (and its service certificate written) to join it.
      if (i === 0) await waitUntil(first.rpc, certPath, "/node/ready/gov", exits[0]!);
    }
    // Joiners wait, Pending, until member0 trusts them by vote, as in production.
    let exited: string | undefined;
    for (const [i, exit] of exits.entries()) {
      void exit.then((code) => {
        exited ??= `${nodes[i]!.name} exited (code ${code}); see its log above`;
      });
    }
    const governance = new SandboxGovernance(
      dir,
      first.rpc,
      certPath,
      constitution.name,
      print,
      READY_TIMEOUT_MS,
      () => exited,
    );
    try {
      await governance.activate();
      await governance.trustJoiners(nodes.slice(1).map((n) => n.rpc));
      await Promise.all(nodes.map((node, i) => waitUntil(node.rpc, certPath, "/node/ready/gov", exits[i]!)));
      await governance.open();
    } finally {
      await governance.close();
    }
    await Promise.all(nodes.map((node, i) => waitUntil(node.rpc, certPath, "/node/ready/app", exits[i]!)));
    if (opts.jsApp) await installSandboxApp(dir, first.rpc, opts.jsApp, print);
    const primary = await primaryOf(first.rpc, certPath);
    const network: NetworkFile = {
      service_cert: certPath,
      primary,
      nodes: await Promise.all(
        nodes.map(async (node, i) => ({
          id: await nodeIdOf(node.rpc, certPath),
          rpc_address: node.rpc,
          node_address: node.nodeAddress,
          pid: children[i]!.pid ?? -1,
          ledger_dir: join(dir, node.name, "ledger"),
          config: node.config,
        })),
      ),
    };
    writeFileSync(join(dir, "network.json"), `${JSON.stringify(network, null, 2)}\n`);
    printWelcome(
      print,
      dir,
      nodes.map((n) => n.rpc),
      network.nodes.find((n) => n.id === primary)?.rpc_address ?? first.rpc,
    );
    return { dir, network, children, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Fails clearly, before any node starts, when one of the sandbox's ports is taken. */
async function checkPortsFree(first: number, count: number): Promise<void> {
  if (first < 1 || first + count - 1 > 65_535) {
    throw new CliError(`--port ${first}: the sandbox needs ports ${first}-${first + count - 1}`);
  }
  for (let port = first; port < first + count; port++) {
    const free = await new Promise<boolean>((resolveFree) => {
      const server = createServer();
      server.once("error", () => resolveFree(false));
      server.listen(port, "127.0.0.1", () => server.close(() => resolveFree(true)));
    });
    if (!free) {
      throw new CliError(
        `port ${port} on 127.0.0.1 is in use; the sandbox needs ports ${first}-${first + count - 1} (RPC, then node-to-node): choose others with --port`,
      );
    }
  }
}

async function getJson<T>(
  address: string,
  certPath: string,
  path: string,
): Promise<{ status: number; body: T | null }> {
  const dispatcher = new Agent({ connect: { ca: readFileSync(certPath, "utf8") } });
  try {
    const res = await request(`https://${address}${path}`, { dispatcher });
    const text = await res.body.text();
    return { status: res.statusCode, body: text ? (JSON.parse(text) as T) : null };
  } finally {
    await dispatcher.close();
  }
}

async function nodeIdOf(address: string, certPath: string): Promise<string> {
  return (await getJson<{ node_id: string }>(address, certPath, "/node/state")).body!.node_id;
}

async function primaryOf(address: string, certPath: string): Promise<string> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const primary = (await getJson<{ primary_id: string | null }>(address, certPath, "/node/network")).body
      ?.primary_id;
    if (primary) return primary;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new CliError("no primary was elected in time");
}

async function waitUntil(
  address: string,
  certPath: string,
  path: string,
  exited: Promise<number | null>,
): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let failed: number | null | undefined;
  exited.then((code) => {
    failed = code;
  });
  while (Date.now() < deadline) {
    if (failed !== undefined)
      throw new CliError(`the node exited (code ${failed}) before it was ready; see its log above`);
    if (existsSync(certPath)) {
      try {
        if ((await getJson(address, certPath, path)).status === 204) return;
      } catch {
        // not listening yet
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new CliError(`the node at ${address} was not ready within ${READY_TIMEOUT_MS / 1000} s`);
}

function printWelcome(
  print: (line: string) => void,
  absDir: string,
  addresses: string[],
  address: string,
): void {
  // Relative paths keep the printed commands short and copy-pasteable from where the user is.
  const rel = relative(process.cwd(), absDir);
  const dir = rel === "" ? "." : rel.startsWith("..") ? absDir : rel;
  const curl = `curl --cacert ${dir}/service_cert.pem --cert ${dir}/user0_cert.pem --key ${dir}/user0_privk.pem`;
  print("");
  print(
    addresses.length === 1
      ? `Coco sandbox is open: 1 node at https://${address}`
      : `Coco sandbox is open: ${addresses.length} nodes at ${addresses.map((a) => `https://${a}`).join(", ")}; primary https://${address}`,
  );
  print(`  workspace     ${dir}`);
  print(`  service cert  ${dir}/service_cert.pem (pin this; nothing else)`);
  print(
    `  member        ${dir}/member0_cert.pem, ${dir}/member0_privk.pem (recovery key ${dir}/member0_enc_privk.pem)`,
  );
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

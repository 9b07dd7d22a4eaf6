import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, relative, resolve } from "node:path";
import { Agent, request } from "undici";
import type { ServiceCurve } from "../crypto/index.ts";
import { CONSTITUTION_FILES } from "../gov/index.ts";
import { installSandboxApp } from "./app-install.ts";
import { startSandboxConsole } from "./console.ts";
import { CliError } from "./fail.ts";
import { encryptionKeygen, keygen } from "./keygen.ts";
import type { NetworkFile } from "./network-file.ts";
import { packageRoot } from "./repo.ts";
import { SandboxGovernance } from "./sandbox-gov.ts";
import { describeExit, type NodeSlot, SandboxNode } from "./sandbox-node.ts";
import { SandboxWatch } from "./sandbox-watch.ts";

// Generous: on a loaded machine three nodes starting at once take a while (they run in parallel).
const READY_TIMEOUT_MS = 120_000;
/** How often the sandbox asks a starting node whether it is ready. */
const READY_POLL_MS = 100;
/** CCF's own default constitution, when this checkout has the shared test vectors next to it. */
const CCF_CONSTITUTION = join(packageRoot(), "..", "shared", "vectors", "ccf", "constitution-default");

/** The constitution files the sandbox's service starts with: CCF's default when present, else Coco's. */
function sandboxConstitution(): { files: string[]; name: string } {
  // COCO_SANDBOX_CONSTITUTION=coco picks Coco's own even where CCF's is present (the README's
  // tour shows what a fresh clone, without ../shared, prints).
  const ccf = process.env.COCO_SANDBOX_CONSTITUTION !== "coco";
  if (ccf && CONSTITUTION_FILES.every((f) => existsSync(join(CCF_CONSTITUTION, f)))) {
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
  /** Discard the nodes' logs instead of writing them to `<dir>/<node>/node.log` (benchmarks). */
  quiet?: boolean;
  /** Also stream the nodes' logs to the terminal. */
  verbose?: boolean;
  /** Extra Node.js flags for the node processes (benchmarks: `--cpu-prof`, which NODE_OPTIONS refuses). */
  nodeArgs?: string[];
  /** Serve Ethereum JSON-RPC at `/app/eth` on every node (docs/ethereum.md). */
  evm?: boolean;
  /** The curve of a new network's service and node keys (P-384 unless set; joiners follow it). */
  curve?: ServiceCurve;
  /** Serve Sawtooth: node i's transaction processors connect to tcp://127.0.0.1:(sawtoothPort + i). */
  sawtoothPort?: number;
  /** Start the web console for member0 on this port (a free one if taken): docs/console.md. */
  console?: { port: number };
  /**
   * Once open, report events (a node exited, a new primary, a node caught up) and, with
   * `restart`, start a node again when it exits. `coco sandbox` watches; benchmarks do not.
   */
  watch?: { restart: boolean };
}

export interface Sandbox {
  dir: string;
  network: NetworkFile;
  /** The node processes as they are now (a restarted node has a new one). */
  readonly children: import("node:child_process").ChildProcess[];
  /** Settles when every node is down for good (exited, and not to be restarted). */
  allDown: Promise<void>;
  stop(): Promise<void>;
}

export type { NetworkFile } from "./network-file.ts";

/** `  2.3 s  <what happened>`: one line per step, with the time since the sandbox started. */
function stepPrinter(print: (line: string) => void): (line: string) => void {
  const started = Date.now();
  return (line) => print(`${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s  ${line}`);
}

/** Relative paths keep the printed commands short and copy-pasteable from where the user is. */
function shown(absDir: string): string {
  const rel = relative(process.cwd(), absDir);
  return rel === "" ? "." : rel.startsWith("..") ? absDir : rel;
}

/** Starts a local network in `dir`, reusing its keys and ledger when they exist. */
export async function startSandbox(opts: SandboxOptions): Promise<Sandbox> {
  const print = opts.print ?? ((line: string) => console.log(line));
  const step = stepPrinter(print);
  if (opts.nodes > 9) throw new CliError("a sandbox runs at most 9 nodes");
  const dir = resolve(opts.dir);
  const certPath = join(dir, "service_cert.pem");
  const resuming = existsSync(certPath);
  // RPC ports from --port, then node-to-node ports right after them.
  const slots: NodeSlot[] = Array.from({ length: opts.nodes }, (_, i) => ({
    name: `node${i}`,
    rpc: `127.0.0.1:${opts.port + i}`,
    nodeAddress: `127.0.0.1:${opts.port + opts.nodes + i}`,
    config: join(dir, `node${i}.config.json`),
    logFile: join(dir, `node${i}`, "node.log"),
  }));
  await checkPortsFree(opts.port, opts.nodes * 2);
  print(
    `Coco sandbox: ${resuming ? "resuming" : "starting"} ${opts.nodes} node${opts.nodes === 1 ? "" : "s"} in ${shown(dir)}` +
      (opts.quiet
        ? ""
        : opts.verbose
          ? " (node logs follow, and are in <node>/node.log)"
          : ` (node logs: ${shown(dir)}/node<N>/node.log; --verbose shows them here)`),
  );
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const first = slots[0]!;
  const constitution = sandboxConstitution();
  const nodes = slots.map((slot) => new SandboxNode(slot, dir, opts));
  let watch: SandboxWatch | undefined;
  const stop = async () => {
    await watch?.stop();
    await Promise.all(nodes.map((n) => n.stop()));
  };
  try {
    // Every node starts at once and loads its code (most of its start-up CPU) while the sandbox
    // makes member0's and user0's keys (`coco start --wait-for`): the first node waits for its
    // configuration, written once those exist; in a new network the joiners wait for the service
    // certificate, the one thing they need to ask to join; a resumed network elects among itself.
    rmSync(first.config, { force: true });
    for (const slot of slots.slice(1)) writeNodeConfig(slot, first, constitution, opts);
    nodes[0]!.start(first.config);
    for (const node of nodes.slice(1)) node.start(resuming ? undefined : certPath);
    await makeCredentials(dir);
    writeNodeConfig(first, undefined, constitution, opts);
    // Joiners wait, Pending, until member0 trusts them by vote, as in production.
    let exited: string | undefined;
    for (const node of nodes) {
      void node.exited.then((exit) => {
        exited ??= `${node.slot.name} ${describeExit(exit)}; see ${shown(node.slot.logFile)}`;
      });
    }
    await waitUntilReady(nodes[0]!, certPath, "/node/ready/gov");
    step(
      resuming
        ? `${first.name} resumed from its ledger at https://${first.rpc}`
        : `${first.name} created the service at https://${first.rpc} (${constitution.name})`,
    );
    const governance = new SandboxGovernance(
      dir,
      first.rpc,
      certPath,
      step,
      READY_TIMEOUT_MS,
      () => exited,
      (rpc) => slots.find((s) => s.rpc === rpc)?.name ?? rpc,
    );
    try {
      await governance.activate();
      // Opened first, while the joiners are still starting: with one node in the configuration
      // the vote commits at once, and the joiners then join an open service.
      await governance.open();
      await governance.trustJoiners(slots.slice(1).map((n) => n.rpc));
      await Promise.all(
        nodes.slice(1).map(async (node) => {
          await waitUntilReady(node, certPath, "/node/ready/gov");
          step(
            `${node.slot.name} ${resuming ? "resumed from its ledger" : "joined"} at https://${node.slot.rpc}`,
          );
        }),
      );
    } finally {
      await governance.close();
    }
    await Promise.all(nodes.map((node) => waitUntilReady(node, certPath, "/node/ready/app")));
    if (opts.jsApp) await installSandboxApp(dir, first.rpc, opts.jsApp, step);
    // (A step that needs the open network, such as starting the web console, goes here.)
    const primary = await primaryOf(first.rpc, certPath);
    const network: NetworkFile = {
      service_cert: certPath,
      primary,
      nodes: await Promise.all(
        nodes.map(async (node) => ({
          id: await nodeIdOf(node.slot.rpc, certPath),
          rpc_address: node.slot.rpc,
          node_address: node.slot.nodeAddress,
          pid: node.pid,
          ledger_dir: join(dir, node.slot.name, "ledger"),
          config: node.slot.config,
        })),
      ),
    };
    const networkFile = join(dir, "network.json");
    writeFileSync(networkFile, `${JSON.stringify(network, null, 2)}\n`);
    printWelcome(
      print,
      dir,
      slots.map((n) => n.rpc),
      network.nodes.find((n) => n.id === primary)?.rpc_address ?? first.rpc,
      opts.watch !== undefined,
    );
    const web = opts.console ? await startSandboxConsole(dir, opts.console.port, print) : undefined;
    let allDown: Promise<void> = Promise.all(nodes.map((n) => n.exited)).then(() => {});
    if (opts.watch) {
      watch = new SandboxWatch(nodes, { ...opts.watch, certPath, networkFile, network, print });
      watch.start();
      allDown = watch.allDown;
    }
    return {
      dir,
      network,
      get children() {
        return nodes.flatMap((n) => (n.child ? [n.child] : []));
      },
      allDown,
      stop: async () => {
        await Promise.all([web?.close(), stop()]);
      },
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** member0 (also a recovery member, docs/recovery.md) and user0, unless the workspace has them. */
async function makeCredentials(dir: string): Promise<void> {
  await Promise.all([
    ...(
      [
        ["member", "member0"],
        ["user", "user0"],
      ] as const
    ).map(([role, name]) =>
      existsSync(join(dir, `${name}_cert.pem`)) ? undefined : keygen(role, name, dir),
    ),
    existsSync(join(dir, "member0_enc_pubk.pem")) ? undefined : encryptionKeygen("member0", dir),
  ]);
}

/** Writes a node's configuration whole (a node waiting for the file never reads half of it). */
function writeNodeConfig(
  slot: NodeSlot,
  joinTarget: NodeSlot | undefined,
  constitution: { files: string[] },
  opts: SandboxOptions,
): void {
  const i = Number(slot.name.slice(4));
  const tmp = `${slot.config}.${process.pid}.tmp`;
  writeFileSync(
    tmp,
    `${JSON.stringify(
      {
        dir: slot.name,
        rpc: { address: slot.rpc },
        nodeAddress: slot.nodeAddress,
        serviceCertFile: "service_cert.pem",
        ...(joinTarget
          ? { join: { target: joinTarget.rpc, serviceCertFile: "service_cert.pem" } }
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
  renameSync(tmp, slot.config);
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

async function waitUntilReady(node: SandboxNode, certPath: string, path: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let exit: string | undefined;
  node.exited.then((e) => {
    exit = describeExit(e);
  });
  while (Date.now() < deadline) {
    if (exit)
      throw new CliError(`${node.slot.name} ${exit} before it was ready; see ${shown(node.slot.logFile)}`);
    if (existsSync(certPath)) {
      try {
        if ((await getJson(node.slot.rpc, certPath, path)).status === 204) return;
      } catch {
        // not listening yet
      }
    }
    await new Promise((r) => setTimeout(r, READY_POLL_MS));
  }
  throw new CliError(
    `${node.slot.name} at ${node.slot.rpc} was not ready within ${READY_TIMEOUT_MS / 1000} s`,
  );
}

function printWelcome(
  print: (line: string) => void,
  absDir: string,
  addresses: string[],
  address: string,
  watching: boolean,
): void {
  const dir = shown(absDir);
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
  print("  attestation   virtual: for development only, INSECURE (it proves nothing about code or hardware)");
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
  if (watching) print("What happens to the nodes from now on is reported here.");
}

/**
 * ERC-20 transfers per second through Ethereum JSON-RPC: a 3-node Coco network (sandbox
 * processes with the EVM on, replicated, state encrypted in the ledger, each send answered once
 * committed) against anvil (interval mining every 0.1 s), same machine, same run, same generator
 * and the same pre-signed transactions (ethers Wallets; many senders, so nonces do not serialise
 * the load).
 *
 *   npm run -s bench:evm -- [--senders 64] [--per-sender 40] [--batch 1] [--only coco|anvil] [--cpu-prof DIR]
 *                           [--curve secp384r1|secp256r1]
 *
 * Each sender is a lane that sends its transfers in nonce order, the next once the previous is
 * answered (`--batch N`: N transfers of a lane per JSON-RPC batch, one request). The figure is
 * transfers / (time from the first send until every transfer has a
 * successful receipt). `--cpu-prof DIR` writes a V8 CPU profile of each Coco node process into
 * DIR, for `tsx bench/profile-summary.ts`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { ContractFactory, getCreateAddress, Interface, keccak256, Wallet } from "ethers";
import { Agent, request } from "undici";
import { startSandbox } from "../src/cli/sandbox.ts";
import { GovClient } from "../src/client/index.ts";
import type { ServiceCurve } from "../src/crypto/index.ts";
import { compile } from "../test/evm/contracts.ts";
import { perOperation, processCpuMs } from "./cpu.ts";

const { values } = parseArgs({
  options: {
    senders: { type: "string", default: "64" },
    batch: { type: "string", default: "1" },
    "per-sender": { type: "string", default: "40" },
    only: { type: "string" },
    "cpu-prof": { type: "string" },
    curve: { type: "string", default: "secp384r1" },
  },
});
if (values.curve !== "secp384r1" && values.curve !== "secp256r1") {
  console.error("--curve must be secp384r1 (the default identity curve) or secp256r1");
  process.exit(2);
}
const curve = values.curve as ServiceCurve;
const senders = Number(values.senders);
const perSender = Number(values["per-sender"]);
const batch = Number(values.batch);
if (!(Number.isInteger(batch) && batch >= 1 && batch <= 100)) {
  console.error("--batch must be an integer from 1 to 100");
  process.exit(2);
}
if (
  !(Number.isInteger(senders) && senders >= 1 && senders <= 512) ||
  !(Number.isInteger(perSender) && perSender >= 1 && perSender <= 1000)
) {
  console.error("--senders must be an integer from 1 to 512 and --per-sender from 1 to 1000");
  process.exit(2);
}
if (values.only !== undefined && values.only !== "coco" && values.only !== "anvil") {
  console.error("--only must be coco or anvil");
  process.exit(2);
}
const profileDir = values["cpu-prof"];
const CHAIN_ID = 0xc0c0n;
const TRANSFER_GAS = 100_000n;

/** The load, signed once and sent unchanged to both chains. */
interface SignedLoad {
  deployer: Wallet;
  wallets: Wallet[];
  deploy: string;
  /** The deployer funds each sender with tokens (setup, not timed). */
  funding: string[];
  /** lanes[s][k]: sender s's k-th transfer (nonce k). */
  lanes: string[][];
}

async function signLoad(): Promise<SignedLoad> {
  const token = compile().PrivateToken!;
  const deployer = new Wallet(Wallet.createRandom().privateKey);
  const wallets = Array.from({ length: senders }, () => new Wallet(Wallet.createRandom().privateKey));
  const base = { chainId: CHAIN_ID, gasPrice: 0n, type: 0 };
  const factory = new ContractFactory(token.abi as never, token.bytecode);
  const deployData = (await factory.getDeployTransaction(10n ** 30n)).data;
  const deploy = await deployer.signTransaction({
    ...base,
    nonce: 0,
    gasLimit: 5_000_000n,
    data: deployData,
  });
  // CREATE's address depends only on the deployer and its nonce: the same on both chains.
  const tokenAddress = getCreateAddress({ from: deployer.address, nonce: 0 });
  const erc20 = new Interface(token.abi as never);
  const funding = await Promise.all(
    wallets.map((w, i) =>
      deployer.signTransaction({
        ...base,
        nonce: i + 1,
        to: tokenAddress,
        gasLimit: TRANSFER_GAS,
        data: erc20.encodeFunctionData("transfer", [w.address, 10n ** 24n]),
      }),
    ),
  );
  const lanes = await Promise.all(
    wallets.map(async (w, s) => {
      const out: string[] = [];
      for (let k = 0; k < perSender; k++) {
        const to = wallets[(s + k + 1) % wallets.length]!.address;
        out.push(
          await w.signTransaction({
            ...base,
            nonce: k,
            to: tokenAddress,
            gasLimit: TRANSFER_GAS,
            data: erc20.encodeFunctionData("transfer", [to, 1n]),
          }),
        );
      }
      return out;
    }),
  );
  return { deployer, wallets, deploy, funding, lanes };
}

/** A JSON-RPC endpoint: the URL and the dispatcher (TLS settings for Coco). */
interface Endpoint {
  url: string;
  dispatcher: Agent;
  headers: Record<string, string>;
}

let nextId = 1;
async function call(ep: Endpoint, method: string, params: unknown[]): Promise<unknown> {
  const res = await request(ep.url, {
    method: "POST",
    dispatcher: ep.dispatcher,
    headers: { "content-type": "application/json", ...ep.headers },
    body: JSON.stringify({ jsonrpc: "2.0", id: nextId++, method, params }),
  });
  const text = await res.body.text();
  let body: { result?: unknown; error?: { message: string } };
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`${method}: HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
  }
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result;
}

/** Sends one JSON-RPC batch of signed transactions; answers how many of them were refused. */
async function sendBatch(ep: Endpoint, raws: string[]): Promise<number> {
  const res = await request(ep.url, {
    method: "POST",
    dispatcher: ep.dispatcher,
    headers: { "content-type": "application/json", ...ep.headers },
    body: JSON.stringify(
      raws.map((raw) => ({ jsonrpc: "2.0", id: nextId++, method: "eth_sendRawTransaction", params: [raw] })),
    ),
  });
  const text = await res.body.text();
  const answers = JSON.parse(text) as Array<{ error?: unknown }> | { error?: { message: string } };
  if (!Array.isArray(answers)) throw new Error(`batch: HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
  return answers.filter((a) => a.error !== undefined).length;
}

async function receiptOf(ep: Endpoint, hash: string, deadlineMs: number): Promise<{ status: string }> {
  for (;;) {
    const r = (await call(ep, "eth_getTransactionReceipt", [hash])) as { status: string } | null;
    if (r) return r;
    if (Date.now() > deadlineMs) throw new Error(`no receipt for ${hash}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A signed transaction's hash, as eth_sendRawTransaction answers it. */
const keccakHash = (raw: string) => keccak256(raw);

/** Setup (untimed), then the timed load: every lane in nonce order, all lanes at once. */
async function drive(ep: Endpoint, load: SignedLoad, onWindow?: (edge: "start" | "end") => void) {
  const deadline = () => Date.now() + 60_000;
  const deployHash = (await call(ep, "eth_sendRawTransaction", [load.deploy])) as string;
  const deployed = await receiptOf(ep, deployHash, deadline());
  if (deployed.status !== "0x1") throw new Error("the token's deployment failed");
  for (const raw of load.funding) await call(ep, "eth_sendRawTransaction", [raw]);
  const lastFunding = await receiptOf(ep, keccakHash(load.funding.at(-1)!), deadline());
  if (lastFunding.status !== "0x1") throw new Error("funding the senders failed");

  let errors = 0;
  const firstError: string[] = [];
  onWindow?.("start");
  const start = process.hrtime.bigint();
  await Promise.all(
    load.lanes.map(async (lane) => {
      for (let k = 0; k < lane.length; k += batch) {
        try {
          if (batch === 1) await call(ep, "eth_sendRawTransaction", [lane[k]]);
          else {
            const refused = await sendBatch(ep, lane.slice(k, k + batch));
            errors += refused;
          }
        } catch (e) {
          errors++;
          if (firstError.length === 0) firstError.push((e as Error).message);
        }
      }
    }),
  );
  const sent = process.hrtime.bigint();
  const missing = { status: "missing" };
  // Done when every lane's last transfer has a receipt (anvil: mined; Coco: already committed).
  const finals = await Promise.all(
    load.lanes.map((lane) => receiptOf(ep, keccakHash(lane.at(-1)!), deadline()).catch(() => missing)),
  );
  const end = process.hrtime.bigint();
  onWindow?.("end");
  const failed = finals.filter((r) => r.status !== "0x1").length;
  // Every transfer, not only the last ones, must have succeeded: spot-check a sample.
  const sample = load.lanes.flatMap((lane) => lane.filter((_, k) => k % 7 === 3));
  const sampled = await Promise.all(
    sample.map((raw) => receiptOf(ep, keccakHash(raw), Date.now() + 5_000).catch(() => missing)),
  );
  const transfers = load.lanes.length * perSender;
  const seconds = Number(end - start) / 1e9;
  return {
    transfers,
    seconds: Number(seconds.toFixed(3)),
    transfers_per_second: Number((transfers / seconds).toFixed(1)),
    all_sent_after_seconds: Number((Number(sent - start) / 1e9).toFixed(3)),
    /** The timed window on the monotonic clock, for `profile-summary.ts --from --to`. */
    load_window_us: [Number(start / 1000n), Number(end / 1000n)],
    send_errors: errors,
    ...(firstError.length ? { first_error: firstError[0] } : {}),
    failed_final_receipts: failed,
    sampled_receipts_failed: sampled.filter((r) => r.status !== "0x1").length,
  };
}

async function benchCoco(dir: string, load: SignedLoad) {
  const port = 18_000 + Math.floor(Math.random() * 900);
  const sandbox = await startSandbox({
    dir,
    nodes: 3,
    port,
    evm: true,
    curve,
    print: () => {},
    logFormat: "json",
    quiet: true,
    ...(profileDir ? { nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] } : {}),
  });
  try {
    const serviceCertPem = readFileSync(join(dir, "service_cert.pem"), "utf8");
    const primary = sandbox.network.nodes.find((n) => n.id === sandbox.network.primary)!;
    const gov = new GovClient({
      url: `https://${primary.rpc_address}`,
      serviceCertPem,
      memberCertPem: readFileSync(join(dir, "member0_cert.pem"), "utf8"),
      memberKeyPem: readFileSync(join(dir, "member0_privk.pem"), "utf8"),
    });
    const userCert = readFileSync(join(dir, "user0_cert.pem"), "utf8");
    const addresses = [load.deployer.address, ...load.wallets.map((w) => w.address)];
    const proposal = await gov.propose({
      actions: [{ name: "set_user", args: { cert: userCert, user_data: { ethereum_addresses: addresses } } }],
    });
    const view =
      proposal.proposalState === "Open"
        ? await gov.vote(proposal.proposalId, "export function vote (proposal, proposerId) { return true }")
        : proposal;
    if (view.proposalState !== "Accepted") throw new Error(`binding the senders: ${view.proposalState}`);
    const ep: Endpoint = {
      url: `https://${primary.rpc_address}/app/eth`,
      dispatcher: new Agent({
        connections: senders,
        connect: {
          ca: serviceCertPem,
          cert: userCert,
          key: readFileSync(join(dir, "user0_privk.pem"), "utf8"),
        },
      }),
      headers: { "x-coco-wait": "commit" },
    };
    const pids = sandbox.network.nodes.map((n) => n.pid);
    const cpuBefore = pids.map(processCpuMs);
    const window: Record<string, Array<number | undefined>> = {};
    const result = await drive(ep, load, (edge) => {
      window[edge] = pids.map(processCpuMs);
    });
    const cpuAfter = pids.map(processCpuMs);
    const perTx = pids.map((_, i) => perOperation(cpuBefore[i], cpuAfter[i], result.transfers));
    const perTimed = pids.map((_, i) => perOperation(window.start![i], window.end![i], result.transfers));
    await ep.dispatcher.close();
    return {
      description:
        "3 Coco nodes (sandbox processes, EVM on); eth_sendRawTransaction to the primary, x-coco-wait: commit",
      curve,
      ...result,
      cpu_ms_per_transfer_incl_setup: {
        primary: perTx[pids.indexOf(primary.pid)],
        backups: perTx.filter((_, i) => pids[i] !== primary.pid),
      },
      /** The timed window only: no deployment, no funding (/proc's 10 ms ticks). */
      cpu_ms_per_transfer_timed: {
        primary: perTimed[pids.indexOf(primary.pid)],
        backups: perTimed.filter((_, i) => pids[i] !== primary.pid),
      },
      ...(profileDir ? { primary_pid: primary.pid } : {}),
    };
  } finally {
    await sandbox.stop();
  }
}

function anvilBinary(): string | undefined {
  const require = createRequire(import.meta.url);
  try {
    const pkg = require.resolve(
      `@foundry-rs/anvil-${process.platform}-${process.arch === "x64" ? "amd64" : process.arch}/package.json`,
    );
    const bin = join(dirname(pkg), "bin", "anvil");
    return existsSync(bin) ? bin : undefined;
  } catch {
    return undefined;
  }
}

async function benchAnvil(load: SignedLoad) {
  const bin = anvilBinary();
  if (!bin) return { skipped: "no anvil binary for this platform (optional dependency @foundry-rs/anvil-*)" };
  const port = 18_900 + Math.floor(Math.random() * 90);
  const args = [
    "--port",
    String(port),
    "--host",
    "127.0.0.1",
    "--chain-id",
    String(CHAIN_ID),
    "--block-time",
    "0.1",
    "--base-fee",
    "0",
    "--gas-price",
    "0",
    "--hardfork",
    "prague",
    "--silent",
  ];
  const child: ChildProcess = spawn(bin, args, { stdio: "ignore" });
  const ep: Endpoint = {
    url: `http://127.0.0.1:${port}`,
    dispatcher: new Agent({ connections: senders }),
    headers: {},
  };
  try {
    const until = Date.now() + 30_000;
    for (;;) {
      try {
        await call(ep, "eth_chainId", []);
        break;
      } catch (e) {
        if (Date.now() > until) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const cpuBefore = processCpuMs(child.pid!);
    const window: Record<string, number | undefined> = {};
    const result = await drive(ep, load, (edge) => {
      window[edge] = processCpuMs(child.pid!);
    });
    const cpuAfter = processCpuMs(child.pid!);
    return {
      description: `anvil ${args.join(" ")} (interval mining 0.1 s, in memory, plain HTTP)`,
      ...result,
      cpu_ms_per_transfer_incl_setup: perOperation(cpuBefore, cpuAfter, result.transfers),
      cpu_ms_per_transfer_timed: perOperation(window.start, window.end, result.transfers),
    };
  } finally {
    await ep.dispatcher.close();
    child.kill("SIGTERM");
  }
}

const root = mkdtempSync(join(tmpdir(), "coco-bench-evm-"));
try {
  const load = await signLoad();
  const anvil = values.only === "coco" ? { skipped: "--only coco" } : await benchAnvil(load);
  const coco =
    values.only === "anvil" ? { skipped: "--only anvil" } : await benchCoco(join(root, "coco"), load);
  const a = (anvil as { transfers_per_second?: number }).transfers_per_second;
  const c = (coco as { transfers_per_second?: number }).transfers_per_second;
  const report = {
    benchmark: "ERC-20 transfers/s through JSON-RPC, same pre-signed transactions on both",
    command: `npm run -s bench:evm -- ${process.argv.slice(2).join(" ")}`.trim(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
    settings: { senders, per_sender: perSender, batch },
    coco,
    anvil,
    ...(a && c ? { coco_over_anvil: Number((c / a).toFixed(3)) } : {}),
  };
  console.log(JSON.stringify(report, null, 2));
} finally {
  rmSync(root, { recursive: true, force: true });
}

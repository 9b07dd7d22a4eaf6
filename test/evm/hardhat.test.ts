import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { Contract, Wallet } from "ethers";
import { type RunningProxy, startCocoProxy } from "../../samples/hardhat/proxy.ts";
import { budget } from "../e2e/waits.ts";
import type { Cluster } from "../helpers/cluster.ts";
import { bindAccounts, ethersProvider, evmCluster, rpcUrl } from "./network.ts";

const run = promisify(execFile);
const PROJECT = resolve("samples/hardhat");
const HARDHAT = resolve("node_modules/hardhat/internal/cli/bootstrap.js");
const ERC20 = [
  "function balanceOf(address) view returns (uint256)",
  "function totalSupply() view returns (uint256)",
  "function symbol() view returns (string)",
];

let cluster: Cluster;
let proxy: RunningProxy;
let dir: string;
const deployer = new Wallet(Wallet.createRandom().privateKey);

before(async () => {
  cluster = await evmCluster(3);
  dir = mkdtempSync(join(tmpdir(), "coco-hardhat-"));
  await bindAccounts(await cluster.gov(), cluster.user, [deployer.address]);
  const backup = cluster.nodes.find((n) => !n.node.isPrimary)!;
  proxy = await startCocoProxy({
    target: rpcUrl(backup),
    ca: cluster.nodes[0]!.node.identity.serviceCertPem,
    cert: cluster.user.certPem,
    key: cluster.user.privateKeyPem,
    port: 0,
  });
});

after(async () => {
  await proxy?.close();
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function hardhat(args: string[], env: Record<string, string>) {
  return run(process.execPath, [HARDHAT, ...args], {
    cwd: PROJECT,
    env: {
      ...process.env,
      HARDHAT_ARTIFACTS: join(dir, "artifacts"),
      HARDHAT_CACHE: join(dir, "cache"),
      // No prompts, no telemetry: as in CI.
      CI: "true",
      HARDHAT_DISABLE_TELEMETRY_PROMPT: "true",
      ...env,
    },
    timeout: budget(240_000),
  });
}

test("a Hardhat project's deploy script, pointed at Coco by network config, deploys and transfers through a backup", async () => {
  const { stdout } = await hardhat(["run", "scripts/deploy.cjs", "--network", "coco"], {
    COCO_RPC_URL: proxy.url,
    PRIVATE_KEY: deployer.privateKey,
    SUPPLY: "5000",
  });
  const out = JSON.parse(stdout.trim().split("\n").at(-1)!) as {
    network: string;
    address: string;
    deployer: string;
    deployment: string;
    transfer: string;
    recipient: string;
  };
  assert.equal(out.network, "coco");
  assert.equal(out.deployer, deployer.address);
  const backup = cluster.nodes.find((n) => !n.node.isPrimary)!;
  const provider = ethersProvider(backup, cluster.nodes[0]!.node.identity.serviceCertPem, cluster.user);
  try {
    const token = new Contract(out.address, ERC20, deployer.connect(provider));
    assert.equal(await token.symbol!(), "SMP");
    assert.equal(await token.totalSupply!(), 5000n);
    assert.equal(await token.balanceOf!(deployer.address), 4999n);
    assert.equal(await token.balanceOf!(out.recipient), 1n);
    assert.equal((await provider.getTransactionReceipt(out.deployment))?.status, 1);
    assert.equal((await provider.getTransactionReceipt(out.transfer))?.status, 1);
  } finally {
    provider.destroy();
  }
});

test("Hardhat with an account Coco has not bound to the user deploys nothing", async () => {
  const stranger = new Wallet(Wallet.createRandom().privateKey);
  await assert.rejects(
    hardhat(["run", "scripts/deploy.cjs", "--network", "coco"], {
      COCO_RPC_URL: proxy.url,
      PRIVATE_KEY: stranger.privateKey,
    }),
    /not an Ethereum account bound|execution reverted|ERC20InvalidReceiver/,
  );
  const backup = cluster.nodes.find((n) => !n.node.isPrimary)!;
  const provider = ethersProvider(backup, cluster.nodes[0]!.node.identity.serviceCertPem, cluster.user);
  try {
    assert.equal(await provider.getTransactionCount(stranger.address), 0);
  } finally {
    provider.destroy();
  }
});

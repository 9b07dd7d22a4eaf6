import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { Contract, Wallet } from "ethers";
import { budget } from "../e2e/waits.ts";
import type { Cluster } from "../helpers/cluster.ts";
import { makeIdentity, passProposal } from "../helpers/network.ts";
import { compile } from "./contracts.ts";
import { bindAccounts, ethersProvider, evmCluster, rpcUrl } from "./network.ts";

const run = promisify(execFile);
let cluster: Cluster;
let dir: string;
const deployer = new Wallet(Wallet.createRandom().privateKey);

before(async () => {
  cluster = await evmCluster(3);
  dir = mkdtempSync(join(tmpdir(), "coco-deploy-script-"));
  await bindAccounts(await cluster.gov(), cluster.user, [deployer.address]);
});

after(async () => {
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function files(user: { certPem: string; privateKeyPem: string }, name: string) {
  const serviceCert = join(dir, "service_cert.pem");
  writeFileSync(serviceCert, cluster.nodes[0]!.node.identity.serviceCertPem);
  writeFileSync(join(dir, `${name}_cert.pem`), user.certPem);
  writeFileSync(join(dir, `${name}_privk.pem`), user.privateKeyPem, { mode: 0o600 });
  return {
    COCO_SERVICE_CERT: serviceCert,
    COCO_CLIENT_CERT: join(dir, `${name}_cert.pem`),
    COCO_CLIENT_KEY: join(dir, `${name}_privk.pem`),
  };
}

test("an existing ethers deploy script, pointed at Coco, deploys an ERC-20 through a backup", async () => {
  const artifact = join(dir, "PrivateToken.json");
  writeFileSync(artifact, JSON.stringify(compile().PrivateToken));
  const backup = cluster.nodes.find((n) => !n.node.isPrimary)!;
  const { stdout } = await run(
    process.execPath,
    ["--import", "tsx", "samples/ethers-deploy/deploy.ts", JSON.stringify(["1000"])],
    {
      env: {
        ...process.env,
        RPC_URL: rpcUrl(backup),
        PRIVATE_KEY: deployer.privateKey,
        ARTIFACT: artifact,
        ...files(cluster.user, "user0"),
      },
      timeout: budget(120_000),
    },
  );
  const out = JSON.parse(stdout.trim().split("\n").at(-1)!) as { address: string; transaction: string };
  const provider = ethersProvider(backup, cluster.nodes[0]!.node.identity.serviceCertPem, cluster.user);
  try {
    const token = new Contract(out.address, compile().PrivateToken!.abi as never, deployer.connect(provider));
    assert.equal(await token.balanceOf!(deployer.address), 1000n);
    assert.equal((await provider.getTransactionReceipt(out.transaction))?.status, 1);
  } finally {
    provider.destroy();
  }
});

test("the same script, as a Coco user whose account is not bound, is refused and deploys nothing", async () => {
  const stranger = await makeIdentity("stranger");
  await passProposal(await cluster.gov(), "set_user", { cert: stranger.certPem });
  const artifact = join(dir, "PrivateToken.json");
  const backup = cluster.nodes.find((n) => !n.node.isPrimary)!;
  const key = Wallet.createRandom().privateKey;
  await assert.rejects(
    run(process.execPath, ["--import", "tsx", "samples/ethers-deploy/deploy.ts", JSON.stringify(["1"])], {
      env: {
        ...process.env,
        RPC_URL: rpcUrl(backup),
        PRIVATE_KEY: key,
        ARTIFACT: artifact,
        ...files(stranger, "stranger"),
      },
      timeout: budget(120_000),
    }),
    // ethers estimates gas first: for an unbound account that runs as address zero, and this
    // constructor's mint to msg.sender (zero) reverts; sent anyway, the transaction is refused.
    /not an Ethereum account bound|execution reverted/,
  );
  const provider = ethersProvider(backup, cluster.nodes[0]!.node.identity.serviceCertPem, cluster.user);
  try {
    assert.equal(await provider.getTransactionCount(new Wallet(key).address), 0, "nothing was deployed");
  } finally {
    provider.destroy();
  }
});

/**
 * A deploy script as an existing Ethereum project has one: read an artifact (abi + bytecode),
 * deploy it with a wallet, wait for the receipt, print the address. Only the provider's transport
 * knows about Coco: with COCO_SERVICE_CERT set it pins the service certificate and presents the
 * Coco user's client certificate (docs/ethereum.md); without it, it is a plain JsonRpcProvider.
 *
 *   RPC_URL=https://127.0.0.1:8000/app/eth PRIVATE_KEY=0x... ARTIFACT=Token.json \
 *   COCO_SERVICE_CERT=workspace/service_cert.pem COCO_CLIENT_CERT=workspace/user0_cert.pem \
 *   COCO_CLIENT_KEY=workspace/user0_privk.pem npx tsx samples/ethers-deploy/deploy.ts [ctor args as JSON]
 */
import { readFileSync } from "node:fs";
import { Agent } from "node:https";
import { ContractFactory, FetchRequest, JsonRpcProvider, Wallet } from "ethers";

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`set ${name}`);
  return value;
}

/** The only Coco-specific part: TLS settings on the HTTP transport. */
function provider(url: string): JsonRpcProvider {
  const ca = process.env.COCO_SERVICE_CERT;
  if (!ca) return new JsonRpcProvider(url);
  const request = new FetchRequest(url);
  const agent = new Agent({
    ca: readFileSync(ca),
    cert: readFileSync(env("COCO_CLIENT_CERT")),
    key: readFileSync(env("COCO_CLIENT_KEY")),
  });
  request.getUrlFunc = FetchRequest.createGetUrlFunc({ agent });
  // Answered once committed: the receipt exists when the hash comes back.
  request.setHeader("x-coco-wait", "commit");
  return new JsonRpcProvider(request, undefined, { pollingInterval: 250 });
}

const rpc = provider(env("RPC_URL"));
try {
  const wallet = new Wallet(env("PRIVATE_KEY"), rpc);
  const artifact = JSON.parse(readFileSync(env("ARTIFACT"), "utf8")) as { abi: unknown[]; bytecode: string };
  const args = JSON.parse(process.argv[2] ?? "[]") as unknown[];
  const contract = await new ContractFactory(artifact.abi as never, artifact.bytecode, wallet).deploy(
    ...args,
  );
  await contract.waitForDeployment();
  const receipt = await contract.deploymentTransaction()!.wait();
  console.log(
    JSON.stringify({
      address: await contract.getAddress(),
      transaction: receipt!.hash,
      block: receipt!.blockNumber,
    }),
  );
} finally {
  rpc.destroy();
}

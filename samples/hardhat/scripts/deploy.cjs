// A Hardhat deploy script as a project already has it (hardhat-ethers): nothing in it is Coco's.
// `npx hardhat run scripts/deploy.cjs --network coco` deploys SampleToken and makes one transfer.
const hre = require("hardhat");

async function main() {
  const supply = BigInt(process.env.SUPPLY ?? "1000000");
  const [deployer] = await hre.ethers.getSigners();
  const token = await hre.ethers.deployContract("SampleToken", [supply]);
  await token.waitForDeployment();
  const recipient = hre.ethers.Wallet.createRandom().address;
  const transfer = await token.transfer(recipient, 1n);
  const receipt = await transfer.wait();
  console.log(
    JSON.stringify({
      network: hre.network.name,
      deployer: deployer.address,
      address: await token.getAddress(),
      deployment: token.deploymentTransaction()?.hash,
      transfer: receipt?.hash,
      recipient,
    }),
  );
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});

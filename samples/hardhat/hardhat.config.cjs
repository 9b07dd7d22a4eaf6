// A Hardhat 2 project's configuration, pointed at Coco by its network entry only.
//
// Coco's Ethereum endpoint wants a TLS client certificate (a Coco user) and pins its own service
// certificate; Hardhat's HTTP provider can present neither, so the `coco` network is the local
// proxy in proxy.ts (plain HTTP on 127.0.0.1, forwarding to Coco with the user's certificate).
// The compiler is the `solc` npm package's solcjs: Hardhat would otherwise download one.
require("@nomicfoundation/hardhat-ethers");
const { subtask } = require("hardhat/config");
const { TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD } = require("hardhat/builtin-tasks/task-names");

const SOLC_VERSION = require("solc/package.json").version;

subtask(TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD, async ({ solcVersion }, _hre, runSuper) => {
  if (solcVersion !== SOLC_VERSION) return runSuper();
  const compilerPath = require.resolve("solc/soljson.js");
  return { version: solcVersion, longVersion: require("solc").version(), compilerPath, isSolcJs: true };
});

module.exports = {
  solidity: {
    version: SOLC_VERSION,
    // Coco's EVM follows Prague (docs/ethereum.md).
    settings: { evmVersion: "prague", optimizer: { enabled: true, runs: 200 } },
  },
  networks: {
    coco: {
      url: process.env.COCO_RPC_URL ?? "http://127.0.0.1:8545",
      chainId: 0xc0c0,
      // Coco's default gas price is 0 (set by governance: docs/ethereum.md); Hardhat's automatic
      // fees would offer a tip of its own, which accounts without ether cannot pay.
      gasPrice: 0,
      accounts: process.env.PRIVATE_KEY ? [process.env.PRIVATE_KEY] : [],
    },
  },
  paths: {
    artifacts: process.env.HARDHAT_ARTIFACTS ?? "./artifacts",
    cache: process.env.HARDHAT_CACHE ?? "./cache",
  },
};

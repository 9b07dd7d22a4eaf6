import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

/** The contracts the EVM tests deploy, compiled here with solc-js from OpenZeppelin's sources. */
export const SOURCE = `// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/** An ERC-20 whose balances only their owners may read (msg.sender checks). */
contract PrivateToken is ERC20 {
  constructor(uint256 supply) ERC20("Private", "PRV") { _mint(msg.sender, supply); }
  function balanceOf(address account) public view override returns (uint256) {
    require(msg.sender == account, "balance is private");
    return super.balanceOf(account);
  }
}

/** Coco's random-bytes precompile (docs/ethereum.md). */
library CocoRandom {
  address internal constant PRECOMPILE = address(0xc0c0);
  function randomBytes(uint256 n) internal view returns (bytes memory) {
    (bool ok, bytes memory out) = PRECOMPILE.staticcall(abi.encode(n));
    require(ok && out.length == n, "CocoRandom: no randomness");
    return out;
  }
}

contract Dice {
  event Rolled(bytes32 value);
  bytes32 public last;
  uint256 public lastNumber;
  uint256 public lastTime;
  bytes32 public parentHash;
  function roll() external returns (bytes32 r) {
    r = bytes32(CocoRandom.randomBytes(32));
    last = r;
    lastNumber = block.number;
    lastTime = block.timestamp;
    parentHash = blockhash(block.number - 1);
    emit Rolled(r);
  }
}
`;

export interface Artifact {
  abi: unknown[];
  bytecode: string;
}

const require = createRequire(import.meta.url);

/** Compiles once per source and solc version; the artifacts are cached in the OS tmp dir. */
export function compile(): Record<string, Artifact> {
  const version = (require("solc/package.json") as { version: string }).version;
  const key = createHash("sha256").update(version).update(SOURCE).digest("hex").slice(0, 16);
  const dir = join(tmpdir(), "coco-evm-test-solc");
  const file = join(dir, `${key}.json`);
  if (existsSync(file)) return JSON.parse(readFileSync(file, "utf8"));
  const solc = require("solc") as { compile(input: string, opts: unknown): string };
  const ozRoot = dirname(dirname(dirname(require.resolve("@openzeppelin/contracts/package.json"))));
  const input = {
    language: "Solidity",
    sources: { "Test.sol": { content: SOURCE } },
    settings: {
      evmVersion: "prague",
      optimizer: { enabled: false },
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
    },
  };
  const findImports = (path: string) => {
    try {
      return { contents: readFileSync(join(ozRoot, path), "utf8") };
    } catch {
      return { error: `not found: ${path}` };
    }
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
  const errors = (output.errors ?? []).filter((e: { severity: string }) => e.severity === "error");
  if (errors.length > 0)
    throw new Error(errors.map((e: { formattedMessage: string }) => e.formattedMessage).join("\n"));
  const out: Record<string, Artifact> = {};
  for (const [name, c] of Object.entries(
    output.contracts["Test.sol"] as Record<string, { abi: unknown[]; evm: { bytecode: { object: string } } }>,
  )) {
    out[name] = { abi: c.abi, bytecode: `0x${c.evm.bytecode.object}` };
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, JSON.stringify(out));
  return out;
}

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Artifact } from "../evm/contracts.ts";

/** The private tests' contracts: a plain OpenZeppelin ERC-20, a public counter, and a reader. */
export const SOURCE = `// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

contract QuorumToken is ERC20 {
  constructor(uint256 supply) ERC20("Quorum", "QRM") { _mint(msg.sender, supply); }
}

contract Counter {
  uint256 public count;
  function inc() external { count += 1; }
}

/** Creates contracts from a private contract: they belong to its privacy group too. */
contract Factory {
  event Made(address made);
  function make() external returns (address made) {
    made = address(new Counter());
    emit Made(made);
  }
}

/** Reads public state from a private contract (allowed) or tries to write it (refused). */
contract Reader {
  function read(Counter c) external view returns (uint256) { return c.count(); }
  function poke(Counter c) external { c.inc(); }
}
`;

const require = createRequire(import.meta.url);

/** Compiles with solc-js (as test/evm does), cached in the OS tmp dir per source and version. */
export function compile(): Record<string, Artifact & { runtime: string }> {
  const version = (require("solc/package.json") as { version: string }).version;
  const key = createHash("sha256").update(version).update(SOURCE).digest("hex").slice(0, 16);
  const dir = join(tmpdir(), "coco-quorum-test-solc");
  const file = join(dir, `${key}.json`);
  if (existsSync(file)) return JSON.parse(readFileSync(file, "utf8"));
  const solc = require("solc") as { compile(input: string, opts: unknown): string };
  const ozRoot = dirname(dirname(dirname(require.resolve("@openzeppelin/contracts/package.json"))));
  const input = {
    language: "Solidity",
    sources: { "Quorum.sol": { content: SOURCE } },
    settings: {
      evmVersion: "prague",
      optimizer: { enabled: false },
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
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
  const out: Record<string, Artifact & { runtime: string }> = {};
  type Compiled = {
    abi: unknown[];
    evm: { bytecode: { object: string }; deployedBytecode: { object: string } };
  };
  for (const [name, c] of Object.entries(output.contracts["Quorum.sol"] as Record<string, Compiled>)) {
    out[name] = {
      abi: c.abi,
      bytecode: `0x${c.evm.bytecode.object}`,
      runtime: `0x${c.evm.deployedBytecode.object}`,
    };
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, JSON.stringify(out));
  return out;
}

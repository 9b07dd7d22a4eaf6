import { type Artifact, compileSolidity } from "../evm/solc.ts";

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

/** Compiles once per source and solc version (cached in the OS tmp dir), as test/evm does. */
export function compile(): Record<string, Artifact> {
  return compileSolidity("Quorum.sol", SOURCE);
}

import { type Artifact, compileSolidity } from "./solc.ts";

export type { Artifact };

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

/** Compiles once per source and solc version (cached in the OS tmp dir). */
export function compile(): Record<string, Artifact> {
  return compileSolidity("Test.sol", SOURCE);
}

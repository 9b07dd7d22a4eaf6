// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// An ordinary OpenZeppelin ERC-20, minted to its deployer: nothing in it knows about Coco.
contract SampleToken is ERC20 {
  constructor(uint256 supply) ERC20("Sample", "SMP") {
    _mint(msg.sender, supply);
  }
}

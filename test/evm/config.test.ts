import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_EVM_CONFIG, EVM_MAPS, readEvmConfig } from "../../src/evm/index.ts";
import { Store } from "../../src/kv/index.ts";
import { parseConfig } from "../../src/node/index.ts";

const BASE = { dir: "n0", members: [{ cert: "member0_cert.pem" }] };

test("the evm config key is a boolean, off by default", () => {
  assert.equal(parseConfig(BASE, "/tmp").evm, false);
  assert.equal(parseConfig({ ...BASE, evm: true }, "/tmp").evm, true);
  assert.throws(() => parseConfig({ ...BASE, evm: "yes" }, "/tmp"), /evm: must be true or false/);
});

test("the chain's settings are governance's, with defaults until voted", () => {
  const store = new Store();
  assert.deepEqual(readEvmConfig(store.begin()), DEFAULT_EVM_CONFIG);
  const tx = store.begin();
  tx.map(EVM_MAPS.config).set(
    new TextEncoder().encode("config"),
    new TextEncoder().encode(
      JSON.stringify({ chain_id: 7, gas_price: "1000000000", block_gas_limit: 50000 }),
    ),
  );
  assert.deepEqual(readEvmConfig(tx), { chainId: 7n, gasPrice: 1_000_000_000n, blockGasLimit: 50_000n });
  tx.abandon();
});

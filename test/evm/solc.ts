import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

/** A compiled contract: its ABI, creation bytecode and runtime (deployed) bytecode, hex. */
export interface Artifact {
  abi: unknown[];
  bytecode: string;
  runtime: string;
}

const require = createRequire(import.meta.url);
/** Bump when the output's shape changes, so stale cached artifacts are not read. */
const FORMAT = "2";

/**
 * Compiles one Solidity source offline with solc-js (the `solc` npm package), for Prague, with
 * OpenZeppelin's sources from npm for imports. Artifacts are cached in the OS tmp dir per source,
 * file name and compiler version, so a test run compiles each source once.
 */
export function compileSolidity(fileName: string, source: string): Record<string, Artifact> {
  const version = (require("solc/package.json") as { version: string }).version;
  const key = createHash("sha256")
    .update(FORMAT)
    .update(version)
    .update(fileName)
    .update(source)
    .digest("hex");
  const dir = join(tmpdir(), "coco-test-solc");
  const file = join(dir, `${key.slice(0, 16)}.json`);
  if (existsSync(file)) return JSON.parse(readFileSync(file, "utf8"));
  const solc = require("solc") as { compile(input: string, opts: unknown): string };
  const ozRoot = dirname(dirname(dirname(require.resolve("@openzeppelin/contracts/package.json"))));
  const input = {
    language: "Solidity",
    sources: { [fileName]: { content: source } },
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
  type Compiled = {
    abi: unknown[];
    evm: { bytecode: { object: string }; deployedBytecode: { object: string } };
  };
  const out: Record<string, Artifact> = {};
  for (const [name, c] of Object.entries(output.contracts[fileName] as Record<string, Compiled>)) {
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

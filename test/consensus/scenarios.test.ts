import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { runScenarioFile, ScenarioError } from "./scenario-runner.ts";

const dir = join(import.meta.dirname, "scenarios");
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".txt"))
  .sort();

describe("consensus scenarios (test/consensus/scenarios/*.txt)", () => {
  it("has scenarios to run", () => {
    assert.ok(files.length >= 10, `only ${files.length} scenario files`);
  });
  for (const file of files) {
    it(file, () => runScenarioFile(join(dir, file)));
  }
});

describe("scenario runner", () => {
  function runText(text: string): void {
    const tmp = mkdtempSync(join(tmpdir(), "coco-scenario-"));
    try {
      const path = join(tmp, "bad.txt");
      writeFileSync(path, text);
      runScenarioFile(path);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }

  it("a failed expectation names the file and line", () => {
    assert.throws(
      () => runText("# comment\nnodes a=0 b=0.5 c=0.9\n\nelect a\nexpect role a=backup\n"),
      (error: unknown) =>
        error instanceof ScenarioError &&
        /bad\.txt:5: expect role a=backup\n.*role of a: expected "backup", got "primary"/.test(error.message),
    );
  });

  it("an unknown command or expectation is an error, not a pass", () => {
    assert.throws(() => runText("nodes a\nfrobnicate a\n"), /bad\.txt:2: frobnicate a/);
    assert.throws(
      () => runText("nodes a=0 b=0.5\nelect a\npropose a count=3\n"),
      /bad\.txt:3: .*\n.*propose takes no count=/,
    );
    assert.throws(() => runText("nodes a=2\n"), /timeout must be a number in \[0, 1\)/);
    assert.throws(
      () => runText("nodes a\nexpect colour a=red\n"),
      /bad\.txt:2: expect colour a=red\n.*unknown expectation colour/,
    );
  });
});

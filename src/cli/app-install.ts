// `coco app install <dir>` and `coco sandbox --js-app <dir>`: build a JS app's bundle where
// needed and install it through governance (propose `set_js_app`, and vote where asked).
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import type { GovClient } from "../client/index.ts";
import { CliError } from "./fail.ts";

export interface AppBundle {
  metadata: { endpoints: Record<string, unknown> };
  modules: Array<{ name: string; module: string }>;
}

function readJson(path: string, what: string): unknown {
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new CliError(`cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

function jsFiles(root: string, dir = root): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...jsFiles(root, path));
    else if (/\.(js|mjs)$/.test(name)) out.push(path);
  }
  return out;
}

/**
 * The bundle of an app directory, in this order: a `build` script in its package.json is run
 * (`npm run build`) and `dist/bundle.json` read; else `bundle.json`; else CCF's layout, `app.json`
 * plus the modules under `src/` (named by their path below it).
 */
export function loadAppBundle(dirArg: string, print: (line: string) => void = () => {}): AppBundle {
  const dir = resolve(dirArg);
  if (!existsSync(dir)) throw new CliError(`no app directory ${dir}`);
  const pkgPath = join(dir, "package.json");
  if (existsSync(pkgPath)) {
    const pkg = readJson(pkgPath, "the app's package.json") as { scripts?: Record<string, string> };
    if (pkg.scripts?.build) {
      print(`building ${dir} (npm run build)`);
      const built = spawnSync("npm", ["run", "-s", "build"], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
      if (built.status !== 0) {
        throw new CliError(
          `npm run build failed in ${dir}:\n${built.stderr.toString()}${built.stdout.toString()}`,
        );
      }
      return readJson(join(dir, "dist", "bundle.json"), "the built bundle") as AppBundle;
    }
  }
  if (existsSync(join(dir, "bundle.json")))
    return readJson(join(dir, "bundle.json"), "the bundle") as AppBundle;
  if (existsSync(join(dir, "app.json"))) {
    const metadata = readJson(join(dir, "app.json"), "app.json") as AppBundle["metadata"];
    const src = join(dir, "src");
    const modules = existsSync(src)
      ? jsFiles(src).map((path) => ({ name: relative(src, path), module: readFileSync(path, "utf8") }))
      : [];
    return { metadata, modules };
  }
  throw new CliError(`${dir} holds no package.json build script, bundle.json or app.json`);
}

/** Proposes `set_js_app` with the app's bundle; with `vote`, votes for it too (a sandbox's only member). */
export async function installApp(
  gov: GovClient,
  dir: string,
  opts: { vote: boolean; print?: (line: string) => void },
): Promise<{ proposalId: string; state: string }> {
  const print = opts.print ?? (() => {});
  const bundle = loadAppBundle(dir, print);
  const proposed = await gov.propose({ actions: [{ name: "set_js_app", args: { bundle } }] });
  print(`proposed set_js_app: ${proposed.proposalId} (${proposed.proposalState})`);
  if (!opts.vote || proposed.proposalState !== "Open") {
    return { proposalId: proposed.proposalId, state: proposed.proposalState };
  }
  const voted = await gov.vote(
    proposed.proposalId,
    "export function vote (proposal, proposerId) { return true }",
  );
  print(`voted for ${proposed.proposalId}: ${voted.proposalState}`);
  return { proposalId: proposed.proposalId, state: voted.proposalState };
}

/** The sandbox's `--js-app`: installs with member0's credentials from the workspace, voting too. */
export async function installSandboxApp(
  workspace: string,
  address: string,
  appDir: string,
  print: (line: string) => void,
): Promise<void> {
  const { GovClient } = await import("../client/index.ts");
  const gov = new GovClient({
    url: `https://${address}`,
    serviceCertPem: readFileSync(join(workspace, "service_cert.pem"), "utf8"),
    memberCertPem: readFileSync(join(workspace, "member0_cert.pem"), "utf8"),
    memberKeyPem: readFileSync(join(workspace, "member0_privk.pem"), "utf8"),
  });
  try {
    const { state } = await installApp(gov, appDir, { vote: true, print });
    if (state !== "Accepted") throw new CliError(`the JS app from ${appDir} was not installed: ${state}`);
  } finally {
    await gov.close();
  }
}

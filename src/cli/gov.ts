import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { GovClient } from "../client/index.ts";
import type { ProposalView } from "../gov/index.ts";
import { CliError } from "./fail.ts";
import {
  defaultUrl,
  findWorkspace,
  isConnectionError,
  readNetwork,
  unreachableMessage,
} from "./workspace.ts";

/** What the command line gave; anything left out comes from the workspace (workspace.ts). */
export interface GovOptions {
  url?: string;
  serviceCert?: string;
  cert?: string;
  key?: string;
}

interface Resolved {
  url: string;
  serviceCert: string;
  cert: string;
  key: string;
  workspace: string | undefined;
}

/** Fills in the options not given from the workspace: its primary, service certificate and member0. */
function resolveOptions(opts: GovOptions): Resolved {
  const workspace = findWorkspace();
  const fromWorkspace = (file: string, option: string) => {
    if (workspace) return join(workspace, file);
    throw new CliError(
      `no workspace found from ${process.cwd()} (a directory with service_cert.pem or network.json, as coco sandbox writes): give ${option} or set COCO_WORKSPACE`,
    );
  };
  return {
    url: (
      opts.url ??
      defaultUrl(workspace ? readNetwork(workspace) : undefined) ??
      "https://127.0.0.1:8000"
    ).replace(/\/+$/, ""),
    serviceCert: opts.serviceCert ?? fromWorkspace("service_cert.pem", "--service-cert"),
    cert: opts.cert ?? fromWorkspace("member0_cert.pem", "--cert"),
    key: opts.key ?? fromWorkspace("member0_privk.pem", "--key"),
    workspace,
  };
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new CliError(`cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}

function client(opts: Resolved): GovClient {
  return new GovClient({
    url: opts.url,
    serviceCertPem: readText(opts.serviceCert, "the service certificate"),
    memberCertPem: readText(opts.cert, "the member certificate"),
    memberKeyPem: readText(opts.key, "the member key"),
  });
}

async function withClient<T>(options: GovOptions, work: (gov: GovClient) => Promise<T>): Promise<T> {
  const opts = resolveOptions(options);
  const gov = client(opts);
  try {
    return await work(gov);
  } catch (e) {
    if (isConnectionError(e)) throw new CliError(await unreachableMessage(opts.url, e, opts.workspace));
    throw e;
  } finally {
    await gov.close();
  }
}

/** A proposal that ended Rejected or Failed is a failed command: exit code 1, and why on stderr. */
export function outcomeExitCode(view: Pick<ProposalView, "proposalState" | "failure">): number {
  if (view.proposalState !== "Rejected" && view.proposalState !== "Failed") return 0;
  const why = view.failure ? `: ${view.failure.reason}` : "";
  console.error(`coco: the proposal ended ${view.proposalState}${why}`);
  return 1;
}

/**
 * The proposal to send: a JSON file holding `{"actions": [...]}`, or one action by name with
 * `--args` as JSON (`coco gov propose set_recovery_threshold --args '{"recovery_threshold": 2}'`).
 */
export function proposalFrom(
  target: string,
  argsJson: string | undefined,
): { actions: Array<{ name: string; args?: unknown }> } {
  if (existsSync(target)) {
    if (argsJson !== undefined) throw new CliError("--args goes with an action name, not a proposal file");
    let parsed: unknown;
    try {
      parsed = JSON.parse(readText(target, "the proposal"));
    } catch (e) {
      if (e instanceof CliError) throw e;
      throw new CliError(`${target} is not JSON: ${(e as Error).message}`);
    }
    const actions = (parsed as { actions?: unknown } | null)?.actions;
    if (!Array.isArray(actions) || actions.length === 0)
      throw new CliError(`${target} must hold {"actions": [...]}`);
    return parsed as { actions: Array<{ name: string; args?: unknown }> };
  }
  if (!/^[a-z][a-z0-9_]*$/.test(target))
    throw new CliError(`${target} is neither a proposal file nor an action name`);
  let args: unknown = {};
  if (argsJson !== undefined) {
    try {
      args = JSON.parse(argsJson);
    } catch (e) {
      throw new CliError(`--args is not JSON: ${(e as Error).message}`);
    }
  }
  return { actions: [{ name: target, args }] };
}

export const ACCEPT = "export function vote (proposal, proposerId) { return true }";
export const REJECT = "export function vote (proposal, proposerId) { return false }";

export function ballotFrom(opts: { accept?: boolean; reject?: boolean; ballot?: string }): string {
  const chosen = [opts.accept, opts.reject, opts.ballot !== undefined].filter(Boolean).length;
  if (chosen !== 1) throw new CliError("give exactly one of --accept, --reject or --ballot <file.js>");
  if (opts.accept) return ACCEPT;
  if (opts.reject) return REJECT;
  return readText(opts.ballot!, "the ballot");
}

export const propose = (target: string, argsJson: string | undefined, opts: GovOptions) =>
  withClient(opts, (gov) => gov.propose(proposalFrom(target, argsJson)));
export const vote = (id: string, ballot: string, opts: GovOptions) =>
  withClient(opts, (gov) => gov.vote(id, ballot));
export const withdraw = (id: string, opts: GovOptions) => withClient(opts, (gov) => gov.withdraw(id));
export const show = (id: string, opts: GovOptions) =>
  withClient(opts, async (gov) => ({ ...(await gov.show(id)), actions: await gov.actions(id) }));
export const activate = (opts: GovOptions) =>
  withClient(opts, async (gov) => {
    await gov.activate();
    return { memberId: gov.memberId, status: "Active" };
  });

/**
 * A recovery member's part of a disaster recovery in one step: fetch its encrypted share from the
 * recovering service, decrypt it locally with its encryption private key, submit it.
 */
export const submitShare = (opts: GovOptions & { encryptionKey: string }) =>
  withClient(opts, async (gov) => {
    // Loaded here: only a recovery needs Shamir's secret sharing.
    const { decryptShare, toBase64 } = await import("../recovery/index.ts");
    const share = decryptShare(
      await gov.encryptedShare(),
      readText(opts.encryptionKey, "the encryption private key"),
    );
    return gov.submitShare(toBase64(share));
  });

export const installAppCommand = (dir: string, opts: GovOptions & { vote: boolean }) =>
  withClient(opts, async (gov) => {
    const { installApp } = await import("./app-install.ts");
    return installApp(gov, dir, { vote: opts.vote, print: (line) => console.error(line) });
  });

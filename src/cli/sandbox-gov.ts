import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CocoClientError, GovClient } from "../client/index.ts";
import type { ProposalView } from "../gov/index.ts";
import { CliError } from "./fail.ts";

const VOTE_YES = "export function vote (proposal, proposerId) { return true }";
/** How often a step is looked at again (a GET of the nodes or of a proposal: cheap). */
const RETRY_MS = 100;
/** How long the first recorded joiner waits for the others, so one vote trusts them all. */
const BATCH_WAIT_MS = 10_000;
/** Longest wait for one governance step's answer before reading its outcome again. */
const STEP_TIMEOUT_MS = 15_000;

type Action = { name: string; args: unknown };

/**
 * The sandbox's consortium: member0 (its only member) sets the service up the way members of a
 * production service do. It acknowledges the state (becoming Active), trusts each joining node
 * by voting `transition_node_to_trusted` (joiners get nothing until then), and opens the service
 * with `transition_service_to_open`.
 *
 * Each step is re-checked before it is retried: on a loaded machine an election may happen while
 * the nodes start, and a governance write in flight is then rolled back (503) or not committed in
 * time (504). Such failures are retried until the deadline; any other failure ends the start.
 */
export class SandboxGovernance {
  private readonly gov: GovClient;
  private readonly deadline: number;
  private readonly votesShown = new Set<string>();

  constructor(
    dir: string,
    address: string,
    private readonly certPath: string,
    /** Reports a step done, one line each. */
    private readonly print: (line: string) => void,
    timeoutMs: number,
    /** Why the sandbox cannot go on (a node exited), if it cannot. */
    private readonly failed: () => string | undefined = () => undefined,
    /** The sandbox's name for the node serving at an RPC address. */
    private readonly nameOf: (rpcAddress: string) => string = (a) => a,
  ) {
    this.gov = new GovClient({
      url: `https://${address}`,
      serviceCertPem: readFileSync(certPath, "utf8"),
      memberCertPem: readFileSync(join(dir, "member0_cert.pem"), "utf8"),
      memberKeyPem: readFileSync(join(dir, "member0_privk.pem"), "utf8"),
    });
    this.deadline = Date.now() + timeoutMs;
  }

  /** Closes the client; a request abandoned by a step's time limit is not waited for long. */
  async close(): Promise<void> {
    await Promise.race([this.gov.close(), new Promise((r) => setTimeout(r, 1_000).unref())]);
  }

  /** member0 acknowledges the state digest, unless it is Active already. */
  async activate(): Promise<void> {
    await this.retrying("member0's activation", async () => {
      const members = await this.gov.get<{ value: Array<{ memberId: string; status: string }> }>(
        "/gov/service/members",
      );
      if (members.value.find((m) => m.memberId === this.gov.memberId)?.status === "Active") return true;
      await this.gov.activate();
      this.print("member0 acknowledged the state digest: an Active member");
      return true;
    });
  }

  /**
   * Trusts the nodes serving at `rpcAddresses` by vote as they are recorded Pending (nodes of a
   * restarted sandbox are Trusted already); returns once all of them are Trusted.
   */
  async trustJoiners(rpcAddresses: string[]): Promise<void> {
    if (rpcAddresses.length === 0) return;
    let proposalId: string | undefined;
    let firstPendingAt: number | undefined;
    // One line per node as it asks to join and as it is trusted, whatever the batching.
    const seenPending = new Set<string>();
    const seenTrusted = new Set<string>();
    await this.retrying("trusting the joining nodes", async () => {
      const nodes = await this.gov.get<{
        value: Array<{ nodeId: string; status: string; rpcAddress: string | null }>;
      }>("/gov/service/nodes");
      const joiners = rpcAddresses.map((a) => nodes.value.find((n) => n.rpcAddress === a));
      for (const [i, n] of joiners.entries()) {
        const name = this.nameOf(rpcAddresses[i]!);
        if (n?.status === "Pending" && !seenPending.has(name)) {
          seenPending.add(name);
          this.print(`${name} asked to join (Pending)`);
        }
        if (n?.status === "Trusted" && seenPending.has(name) && !seenTrusted.has(name)) {
          seenTrusted.add(name);
          this.print(`${name} trusted by member0's vote`);
        }
      }
      if (joiners.every((n) => n?.status === "Trusted")) return true;
      if (proposalId !== undefined) {
        const state = await this.follow(proposalId);
        if (state === "Open") return false;
        proposalId = undefined;
        if (state !== "gone" && state !== "Accepted") {
          throw new CliError(`the proposal trusting the joining nodes ended ${state}`);
        }
        return false;
      }
      const pending = joiners.flatMap((n) => (n?.status === "Pending" ? [n.nodeId] : []));
      if (pending.length === 0) return false; // not recorded yet: the joiners are still starting
      // One vote for all the joiners saves a configuration change each: wait a little for the
      // ones still starting.
      firstPendingAt ??= Date.now();
      const unrecorded = joiners.some((n) => n === undefined);
      if (unrecorded && Date.now() - firstPendingAt < BATCH_WAIT_MS) return false;
      const validFrom = `${new Date().toISOString().replace(/[-:T]/g, "").slice(0, 14)}Z`;
      const actions: Action[] = pending.map((nodeId) => ({
        name: "transition_node_to_trusted",
        args: { node_id: nodeId, valid_from: validFrom },
      }));
      proposalId = (await this.gov.propose({ actions })).proposalId;
      this.print(`member0 proposed transition_node_to_trusted (${short(proposalId)})`);
      return false;
    });
  }

  /** member0 proposes `transition_service_to_open` and votes for it, unless the service is open. */
  async open(): Promise<void> {
    let proposalId: string | undefined;
    await this.retrying("opening the service", async () => {
      const info = await this.gov.get<{ status: string }>("/gov/service/info");
      if (info.status === "Open") {
        if (proposalId !== undefined) this.print("the service is Open, by member0's vote");
        return true;
      }
      if (proposalId === undefined) {
        proposalId = (
          await this.gov.propose({
            actions: [
              {
                name: "transition_service_to_open",
                args: { next_service_identity: readFileSync(this.certPath, "utf8") },
              },
            ],
          })
        ).proposalId;
        this.print(`member0 proposed transition_service_to_open (${short(proposalId)})`);
      }
      const state = await this.follow(proposalId);
      if (state === "gone")
        proposalId = undefined; // rolled back with an election: propose again
      else if (state !== "Open" && state !== "Accepted") {
        throw new CliError(`the opening proposal ended ${state}`);
      }
      return false;
    });
  }

  /** Votes for a proposal member0 has not voted on yet; its state, or "gone" if rolled back. */
  private async follow(proposalId: string): Promise<ProposalView["proposalState"] | "gone"> {
    let proposal: ProposalView;
    try {
      proposal = await this.gov.show(proposalId);
    } catch (e) {
      if (e instanceof CocoClientError && e.status === 404) return "gone";
      throw e;
    }
    // member0 is the sandbox's only member, so any ballot is its own.
    if (proposal.proposalState === "Open" && proposal.ballotCount === 0) {
      proposal = await this.gov.vote(proposalId, VOTE_YES);
    }
    // Said once per proposal, also when the vote's answer was lost and this is a re-read.
    if (proposal.ballotCount > 0 && !this.votesShown.has(proposalId)) {
      this.votesShown.add(proposalId);
      this.print(`member0 voted for ${short(proposalId)}: ${proposal.proposalState}`);
    }
    if (proposal.proposalState !== "Open" && proposal.proposalState !== "Accepted") {
      throw new CliError(
        `proposal ${proposalId} ended ${proposal.proposalState}: ${JSON.stringify(proposal.failure ?? {})}`,
      );
    }
    return proposal.proposalState;
  }

  /** Runs `step` until it reports done, retrying transient failures until the deadline. */
  private async retrying(what: string, step: () => Promise<boolean>): Promise<void> {
    for (;;) {
      const failure = this.failed();
      if (failure) throw new CliError(`${what}: ${failure}`);
      try {
        if (await withinStepTime(step())) return;
      } catch (e) {
        if (!transient(e) || Date.now() > this.deadline) throw e;
      }
      if (Date.now() > this.deadline) throw new CliError(`${what} did not finish in time`);
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  }
}

const short = (id: string) => `${id.slice(0, 12)}...`;

/**
 * A step's answer, or a retryable failure once STEP_TIMEOUT_MS has passed: a governance write
 * caught by an election while it waits for commit may go unanswered; its outcome is read again.
 */
function withinStepTime<T>(work: Promise<T>): Promise<T> {
  work.catch(() => {}); // an abandoned step's failure is not news
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(Object.assign(new Error("no answer in time"), { code: "UND_ERR_STEP_TIMEOUT" })),
      STEP_TIMEOUT_MS,
    );
  });
  return Promise.race([work, limit]).finally(() => clearTimeout(timer));
}

/** A failure worth retrying: the service answered 5xx, or a node could not be reached. */
function transient(e: unknown): boolean {
  if (e instanceof CocoClientError) return e.status >= 500;
  const code = (e as { code?: string }).code ?? "";
  return code.startsWith("UND_ERR") || ["ECONNREFUSED", "ECONNRESET", "EPIPE"].includes(code);
}

import { useState } from "preact/hooks";
import { type ConsoleError, get, type Member, type Proposal, post, type Session, type User } from "../api.ts";
import { Badge, ErrorBox, Section, Short } from "../components.tsx";
import { errorOf, setParams, useLoad } from "../state.ts";
import { BallotEditor } from "./ballot-editor.tsx";
import { ProposalForm } from "./proposal-form.tsx";

const STATE_ORDER = ["Open", "Accepted", "Rejected", "Failed", "Withdrawn", "Dropped"];

function actionNames(p: Proposal): string {
  return p.actions?.actions?.map((a) => a.name).join(", ") ?? "…";
}

export function GovernancePage({ session, params }: { session: Session; params: URLSearchParams }) {
  const selected = params.get("proposal") ?? undefined;
  const members = useLoad(() => get<{ value: Member[] }>("/api/gov/members", "Read the members"), [], 5000);
  const users = useLoad(() => get<{ value: User[] }>("/api/gov/users", "Read the users"), [], 5000);
  const proposals = useLoad(
    () => get<{ proposals: Proposal[] }>("/api/gov/proposals", "Read the proposals"),
    [],
    1500,
  );
  const constitution = useLoad(
    () => get<{ constitution: string }>("/api/gov/constitution", "Read the constitution"),
    [],
  );
  const list = [...(proposals.data?.proposals ?? [])].sort(
    (a, b) => STATE_ORDER.indexOf(a.proposalState) - STATE_ORDER.indexOf(b.proposalState),
  );
  const current = list.find((p) => p.proposalId === selected);
  const select = (id: string | undefined) => setParams("governance", { proposal: id });

  return (
    <div>
      <div class="grid2">
        <Section title={`Members (${members.data?.value.length ?? 0})`}>
          <ErrorBox error={members.error} onRetry={members.reload} />
          <table data-testid="members">
            <thead>
              <tr>
                <th>Member</th>
                <th>Status</th>
                <th>Recovery</th>
                <th>Data</th>
              </tr>
            </thead>
            <tbody>
              {members.data?.value.map((m) => (
                <tr key={m.memberId}>
                  <td>
                    <Short id={m.memberId} />{" "}
                    {m.memberId === session.memberId && <span class="tag">you</span>}
                  </td>
                  <td>
                    <Badge value={m.status} />
                  </td>
                  <td>{m.publicEncryptionKey ? (m.recoveryRole ?? "Participant") : "—"}</td>
                  <td class="small">{m.memberData === null ? "—" : JSON.stringify(m.memberData)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Section>
        <Section title={`Users (${users.data?.value.length ?? 0})`}>
          <ErrorBox error={users.error} onRetry={users.reload} />
          <table data-testid="users">
            <thead>
              <tr>
                <th>User</th>
                <th>Data</th>
              </tr>
            </thead>
            <tbody>
              {users.data?.value.map((u) => (
                <tr key={u.userId}>
                  <td>
                    <Short id={u.userId} />
                  </td>
                  <td class="small">{u.userData === null ? "—" : JSON.stringify(u.userData)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Section>
      </div>
      <Section title="Proposals">
        <ErrorBox error={proposals.error} onRetry={proposals.reload} />
        {list.length === 0 && !proposals.loading && <p class="muted">No proposals yet.</p>}
        <table data-testid="proposals">
          <thead>
            <tr>
              <th>Proposal</th>
              <th>State</th>
              <th>Actions</th>
              <th>Proposer</th>
              <th>Ballots</th>
            </tr>
          </thead>
          <tbody>
            {list.map((p) => (
              <tr
                key={p.proposalId}
                class={`clickable ${p.proposalId === selected ? "selected" : ""}`}
                onClick={() => select(p.proposalId)}
                data-proposal={p.proposalId}
                data-state={p.proposalState}
              >
                <td>
                  <Short id={p.proposalId} />
                </td>
                <td>
                  <Badge value={p.proposalState} />
                </td>
                <td>{actionNames(p)}</td>
                <td>
                  <Short id={p.proposerId} />
                </td>
                <td>{p.ballotCount}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Section>
      {current && <ProposalDetail proposal={current} session={session} onChange={proposals.reload} />}
      {selected && !current && !proposals.loading && (
        <p class="muted">Proposal {selected.slice(0, 12)}… is not on this service.</p>
      )}
      <Section title="New proposal">
        <ProposalForm
          onCreated={(p) => {
            proposals.reload();
            select(p.proposalId);
          }}
        />
      </Section>
      <Section title="Constitution">
        <ErrorBox error={constitution.error} onRetry={constitution.reload} />
        <details>
          <summary>
            The rules every proposal goes through ({constitution.data?.constitution.split("\n").length ?? 0}{" "}
            lines: <code>validate</code>, <code>resolve</code>, <code>apply</code>)
          </summary>
          <pre data-testid="constitution">{constitution.data?.constitution}</pre>
        </details>
      </Section>
    </div>
  );
}

function ProposalDetail({
  proposal: p,
  session,
  onChange,
}: {
  proposal: Proposal;
  session: Session;
  onChange: () => void;
}) {
  const [error, setError] = useState<ConsoleError>();
  const withdraw = async () => {
    setError(undefined);
    try {
      await post(`/api/gov/proposals/${p.proposalId}/withdraw`, {}, "Withdraw the proposal");
      onChange();
    } catch (e) {
      setError(errorOf("Withdraw the proposal", e));
    }
  };
  const open = p.proposalState === "Open";
  return (
    <Section
      title={`Proposal ${p.proposalId.slice(0, 16)}…`}
      actions={
        <span data-testid="proposal-state">
          <Badge value={p.proposalState} />
        </span>
      }
    >
      <div class="grid2">
        <div>
          <h3>Actions</h3>
          <pre data-testid="proposal-actions">{JSON.stringify(p.actions, null, 2)}</pre>
          <div class="small muted">
            Proposed by <Short id={p.proposerId} /> {p.proposerId === session.memberId && "(you)"}
          </div>
          {p.failure && (
            <div class="error">
              <strong>The proposal failed.</strong>
              <div>Why: {p.failure.reason}</div>
            </div>
          )}
        </div>
        <div>
          <h3>Ballots ({p.ballotCount})</h3>
          {Object.entries(p.ballots).map(([member, ballot]) => (
            <div key={member}>
              <Short id={member} />{" "}
              {p.finalVotes?.[member] !== undefined && (
                <Badge value={p.finalVotes[member] ? "Accepted" : "Rejected"} />
              )}
              {p.voteFailures?.[member] && (
                <span class="tag warn">ballot failed: {p.voteFailures[member].reason}</span>
              )}
              <pre>{ballot}</pre>
            </div>
          ))}
          {open && (
            <>
              <h3>Your vote</h3>
              <BallotEditor proposal={p} onVoted={onChange} />
            </>
          )}
          {open && p.proposerId === session.memberId && (
            <p>
              <button type="button" class="danger" onClick={withdraw} data-testid="withdraw">
                Withdraw
              </button>
            </p>
          )}
          <ErrorBox error={error} />
        </div>
      </div>
    </Section>
  );
}

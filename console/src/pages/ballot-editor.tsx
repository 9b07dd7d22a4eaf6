import { useState } from "preact/hooks";
import { type ConsoleError, type Proposal, post } from "../api.ts";
import { ErrorBox } from "../components.tsx";
import { errorOf, useStored } from "../state.ts";

const TEMPLATES: Record<string, string> = {
  Accept: "export function vote (proposal, proposerId) {\n  return true;\n}\n",
  Reject: "export function vote (proposal, proposerId) {\n  return false;\n}\n",
  "Accept only these actions":
    'export function vote (proposal, proposerId) {\n  // Accept only if every action is one of these.\n  const allowed = ["set_user", "remove_user"];\n  return JSON.parse(proposal).actions.every((a) => allowed.includes(a.name));\n}\n',
  "Accept if proposed by a given member":
    'export function vote (proposal, proposerId) {\n  return proposerId === "<member id>";\n}\n',
  "Accept unless it removes a member":
    'export function vote (proposal, proposerId) {\n  return !JSON.parse(proposal).actions.some((a) => a.name === "remove_member");\n}\n',
};

/** A member's ballot for one proposal: a quick yes or no, or a conditional ballot script. */
export function BallotEditor({ proposal, onVoted }: { proposal: Proposal; onVoted: (p: Proposal) => void }) {
  const [script, setScript] = useStored(`ballot:${proposal.proposalId}`, TEMPLATES.Accept!);
  const [error, setError] = useState<ConsoleError>();
  const [busy, setBusy] = useState(false);
  const vote = async (ballot: string) => {
    setBusy(true);
    setError(undefined);
    try {
      onVoted(
        await post<Proposal>(
          `/api/gov/proposals/${proposal.proposalId}/ballot`,
          { ballot },
          "Submit the ballot",
        ),
      );
    } catch (e) {
      setError(errorOf("Submit the ballot", e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div data-testid="ballot-editor">
      <div class="row">
        <button
          class="primary"
          type="button"
          disabled={busy}
          onClick={() => vote(TEMPLATES.Accept!)}
          data-testid="vote-accept"
        >
          Vote for
        </button>
        <button
          class="danger"
          type="button"
          disabled={busy}
          onClick={() => vote(TEMPLATES.Reject!)}
          data-testid="vote-reject"
        >
          Vote against
        </button>
      </div>
      <details>
        <summary>Conditional ballot</summary>
        <div class="row">
          Start from:
          {Object.keys(TEMPLATES).map((name) => (
            <button key={name} type="button" onClick={() => setScript(TEMPLATES[name]!)}>
              {name}
            </button>
          ))}
        </div>
        <textarea
          rows={8}
          value={script}
          onInput={(e) => setScript((e.target as HTMLTextAreaElement).value)}
          name="ballot"
        />
        <button type="button" disabled={busy} onClick={() => vote(script)} data-testid="vote-script">
          Submit this ballot
        </button>
      </details>
      <ErrorBox error={error} />
    </div>
  );
}

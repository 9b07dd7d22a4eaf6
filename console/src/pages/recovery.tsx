import { useState } from "preact/hooks";
import { type ConsoleError, get, post, type Session } from "../api.ts";
import { Badge, ErrorBox, Section, Short } from "../components.tsx";
import { errorOf, useLoad } from "../state.ts";

interface RecoveryState {
  status: string;
  recoveryThreshold: number | null;
  recoveryCount: number;
  previousServiceIdentity?: string;
  memberId: string;
  holdsShare: boolean;
  recoveryKey: boolean;
}

export function RecoveryPage({ session }: { session: Session }) {
  const state = useLoad(() => get<RecoveryState>("/api/recovery", "Read the recovery state"), [], 2000);
  const [error, setError] = useState<ConsoleError>();
  const [done, setDone] = useState<string>();
  const [busy, setBusy] = useState(false);
  const s = state.data;
  const waiting = s?.status === "WaitingForRecoveryShares";
  const submit = async () => {
    setBusy(true);
    setError(undefined);
    setDone(undefined);
    try {
      const answer = await post<{ message: string }>(
        "/api/recovery/share",
        {},
        "Submit this member's recovery share",
      );
      setDone(answer?.message ?? "share submitted");
      state.reload();
    } catch (e) {
      setError(errorOf("Submit this member's recovery share", e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div>
      <ErrorBox error={state.error} onRetry={state.reload} />
      <Section title="Recovery">
        <dl class="facts">
          <dt>Service status</dt>
          <dd data-testid="recovery-status">
            <Badge value={s?.status} />
          </dd>
          <dt>Shares needed to recover</dt>
          <dd>{s?.recoveryThreshold ?? "—"}</dd>
          <dt>Times recovered</dt>
          <dd>{s?.recoveryCount ?? "—"}</dd>
          {s?.previousServiceIdentity && (
            <>
              <dt>Previous identity</dt>
              <dd>
                <span class="small">endorsed by this service</span>
              </dd>
            </>
          )}
          <dt>This member</dt>
          <dd>
            <Short id={session.memberId} />{" "}
            {s ? (s.holdsShare ? "holds a recovery share" : "holds no recovery share") : ""}
            {s && !s.recoveryKey && <span class="muted">; the console has no encryption key for it</span>}
          </dd>
        </dl>
        <p class="small muted">
          When a majority of nodes is lost for good, operators start a node in recover mode on a surviving
          ledger and members open the recovered service; it then waits here for recovery shares. The console
          decrypts this member's share with its encryption key on this machine and submits it, signed.
        </p>
        <button
          type="button"
          class="primary"
          disabled={busy || !waiting || !s?.recoveryKey}
          onClick={submit}
          data-testid="submit-share"
        >
          Submit my recovery share
        </button>{" "}
        {!waiting && s && <span class="muted small">the service is not waiting for shares ({s.status})</span>}
        {done && <div class="ok">{done}</div>}
        <ErrorBox error={error} />
      </Section>
    </div>
  );
}

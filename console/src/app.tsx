import { get, type Session } from "./api.ts";
import { ErrorBox, Short } from "./components.tsx";
import { GovernancePage } from "./pages/governance.tsx";
import { LedgerPage } from "./pages/ledger.tsx";
import { NetworkPage } from "./pages/network.tsx";
import { RecoveryPage } from "./pages/recovery.tsx";
import { href, useLoad, useRoute } from "./state.ts";

const PAGES = [
  ["network", "Network"],
  ["governance", "Governance"],
  ["ledger", "Ledger"],
  ["recovery", "Recovery"],
] as const;

export function App() {
  const route = useRoute();
  const session = useLoad(() => get<Session>("/api/session", "Connect to the console"), []);
  const s = session.data;
  return (
    <div class="shell">
      <nav class="top">
        <span class="brand">Coco console</span>
        {PAGES.map(([id, label]) => (
          <a key={id} href={href(id)} class={route.page === id ? "active" : ""} data-page={id}>
            {label}
          </a>
        ))}
        <span class="who">
          {s ? (
            <>
              member <Short id={s.memberId} /> <span class="muted">({s.subject})</span>
            </>
          ) : (
            "…"
          )}
        </span>
      </nav>
      <main data-testid={`page-${route.page}`}>
        <ErrorBox error={session.error} onRetry={session.reload} />
        {s && route.page === "network" && <NetworkPage session={s} />}
        {s && route.page === "governance" && <GovernancePage session={s} params={route.params} />}
        {s && route.page === "ledger" && <LedgerPage session={s} params={route.params} />}
        {s && route.page === "recovery" && <RecoveryPage session={s} />}
        {s && !PAGES.some(([id]) => id === route.page) && (
          <p>
            No page “{route.page}”. <a href={href("network")}>Go to the network</a>.
          </p>
        )}
      </main>
    </div>
  );
}

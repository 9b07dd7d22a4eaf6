import { useEffect, useState } from "preact/hooks";
import { get, type LedgerEntry, type LedgerPage as Page, type Session, type Shown } from "../api.ts";
import { Badge, ErrorBox, Section, Short } from "../components.tsx";
import { ReceiptPanel } from "../receipt-panel.tsx";
import { setParams, useLoad } from "../state.ts";

const PAGE = 25;

function bytes(s: Shown | undefined) {
  if (!s) return <span class="muted">—</span>;
  const cut = s.truncated ? ` … (${s.length} bytes)` : "";
  return s.text !== undefined ? (
    <code>{JSON.stringify(s.text).slice(1, -1) + cut}</code>
  ) : (
    <code class="muted">0x{s.hex + cut}</code>
  );
}

export function LedgerPage({ session, params }: { session: Session; params: URLSearchParams }) {
  const from = params.get("from");
  const selected = params.get("tx") ?? undefined;
  const [search, setSearch] = useState(selected ?? "");
  const pageData = useLoad(
    async () => {
      let start = from ? Number(from) : 0;
      if (!start) {
        const probe = await get<Page>("/api/ledger/entries?from=1&to=1", "Read the ledger");
        start = Math.max(1, probe.last_seqno - PAGE + 1);
      }
      return get<Page>(`/api/ledger/entries?from=${start}&to=${start + PAGE - 1}`, "Read the ledger");
    },
    [from],
    from ? undefined : 3000,
  );
  const entry = useLoad(
    async () =>
      selected
        ? (await get<Page>(`/api/ledger/entries?txid=${selected}`, `Find transaction ${selected}`)).entries[0]
        : undefined,
    [selected],
  );
  useEffect(() => setSearch(selected ?? ""), [selected]);
  const entries = pageData.data?.entries ?? [];
  const first = entries[0]?.seqno ?? 1;
  const go = (f: number | undefined, tx = selected) =>
    setParams("ledger", { from: f ? String(Math.max(1, f)) : undefined, tx });

  const find = (e: Event) => {
    e.preventDefault();
    const q = search.trim();
    if (/^[0-9]+$/.test(q)) go(Number(q), undefined);
    else go(from ? Number(from) : undefined, q);
  };

  return (
    <div>
      <Section
        title="Ledger"
        actions={
          <form class="row" onSubmit={find}>
            <input
              name="search"
              placeholder="TxID (2.15) or seqno"
              value={search}
              onInput={(e) => setSearch((e.target as HTMLInputElement).value)}
              size={22}
            />
            <button type="submit" data-testid="search">
              Find
            </button>
          </form>
        }
      >
        <ErrorBox error={pageData.error} onRetry={pageData.reload} />
        <div class="row small">
          <button type="button" onClick={() => go(first - PAGE)} disabled={first <= 1}>
            ← Older
          </button>
          <button
            type="button"
            onClick={() => go(first + PAGE)}
            disabled={!pageData.data || first + PAGE > pageData.data.last_seqno}
          >
            Newer →
          </button>
          <button type="button" onClick={() => go(undefined)}>
            Latest (live)
          </button>
          <span class="muted">
            {entries.length ? `seqnos ${first}–${entries.at(-1)?.seqno}` : ""} of{" "}
            {pageData.data?.last_seqno ?? "…"}; committed through{" "}
            {pageData.data?.commit_transaction_id ?? "…"}
          </span>
        </div>
        <div class="table-wrap">
          <table data-testid="ledger">
            <thead>
              <tr>
                <th>Seqno</th>
                <th>TxID</th>
                <th>Kind</th>
                <th>Status</th>
                <th>Size</th>
                <th>Public maps written</th>
                <th>Private domain</th>
              </tr>
            </thead>
            <tbody>
              {entries.map((e) => (
                <tr
                  key={e.seqno}
                  class={`clickable ${e.transaction_id === selected ? "selected" : ""}`}
                  onClick={() => go(from ? Number(from) : undefined, e.transaction_id)}
                  data-txid={e.transaction_id}
                  data-kind={e.type}
                >
                  <td>{e.seqno}</td>
                  <td>
                    <code>{e.transaction_id}</code>
                  </td>
                  <td>{e.type === "signature" ? <span class="tag">signature</span> : "write set"}</td>
                  <td>
                    <Badge value={e.status} />
                  </td>
                  <td>{e.size} B</td>
                  <td class="small">
                    {e.public_writes.map((m) => m.map.replace(/^public:/, "")).join(", ") || "—"}
                  </td>
                  <td class="small">{e.private_domain ? `encrypted, ${e.private_domain.bytes} B` : "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Section>
      <ErrorBox error={entry.error} onRetry={entry.reload} />
      {entry.data && <EntryDetail entry={entry.data} session={session} />}
    </div>
  );
}

function EntryDetail({ entry: e, session }: { entry: LedgerEntry; session: Session }) {
  return (
    <Section title={`Transaction ${e.transaction_id}`} actions={<Badge value={e.status} />}>
      <div class="grid2">
        <div>
          <dl class="facts small" data-testid="entry-facts">
            <dt>Kind</dt>
            <dd>
              {e.type === "signature"
                ? "signature transaction (signs the Merkle root of every earlier entry)"
                : "write set"}
            </dd>
            <dt>Size</dt>
            <dd>{e.size} bytes</dd>
            <dt>Write set digest</dt>
            <dd>
              <Short id={e.write_set_digest} length={24} />
            </dd>
            <dt>Commit evidence digest</dt>
            <dd>
              <Short id={e.commit_evidence_digest} length={24} />
            </dd>
            <dt>Claims digest</dt>
            <dd>
              <Short id={e.claims_digest} length={24} />
            </dd>
            <dt>Merkle leaf</dt>
            <dd>
              <Short id={e.leaf} length={24} />
            </dd>
            <dt>Ledger secret</dt>
            <dd>version {e.secret_version}</dd>
            <dt>Private domain</dt>
            <dd data-testid="private-domain">
              {e.private_domain
                ? `${e.private_domain.bytes} bytes of AES-256-GCM ciphertext: its maps, keys and values are visible only inside the nodes`
                : "none"}
            </dd>
          </dl>
          <h3>Public writes</h3>
          {e.public_writes.length === 0 && <p class="muted">none</p>}
          {e.public_writes.map((m) => (
            <div key={m.map}>
              <code>{m.map}</code> ({m.updates.length})
              <table class="small">
                <tbody>
                  {m.updates.slice(0, 50).map((u) => (
                    <tr key={u.key.text ?? u.key.hex}>
                      <td>{bytes(u.key)}</td>
                      <td>{u.removed ? <span class="tag warn">removed</span> : bytes(u.value)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ))}
        </div>
        <div>
          <ReceiptPanel entry={e} session={session} />
        </div>
      </div>
    </Section>
  );
}

import { get, type NetworkView, type Session } from "../api.ts";
import { LineChart } from "../chart.tsx";
import { Badge, ErrorBox, Section, Short, when } from "../components.tsx";
import { useLoad } from "../state.ts";

function ago(ms: number | null): string {
  if (ms === null) return "never";
  const s = Math.round((Date.now() - ms) / 1000);
  return s <= 1 ? "just now" : `${s} s ago`;
}

export function NetworkPage({ session }: { session: Session }) {
  const net = useLoad(() => get<NetworkView>("/api/network", "Read the network's state"), [], 1000);
  const data = net.data;
  const latest = (xs: Array<number | null> | undefined) => {
    const v = xs?.filter((x) => x !== null).at(-1);
    return v === undefined ? "—" : String(v);
  };
  return (
    <div>
      <ErrorBox error={net.error} onRetry={net.reload} />
      <Section title="Service">
        <dl class="facts">
          <dt>Status</dt>
          <dd data-testid="service-status">
            <Badge value={data?.service.status} />
          </dd>
          <dt>View</dt>
          <dd>{data?.service.view ?? "—"}</dd>
          <dt>Primary</dt>
          <dd>
            <Short id={data?.service.primaryId} />
          </dd>
          <dt>Last commit</dt>
          <dd>{data?.service.commitTransactionId ?? "—"}</dd>
          <dt>Identity</dt>
          <dd>
            {session.serviceSubject}, <Short id={session.serviceCertificateId} length={16} /> valid to{" "}
            {when(session.serviceValidTo)}
          </dd>
        </dl>
      </Section>
      <Section title="Throughput and commit latency">
        <div class="charts">
          <div>
            <div class="metric">
              <span data-testid="txps">{latest(data?.series.txPerSecond)}</span> committed tx/s
            </div>
            <LineChart
              title="Committed transactions per second"
              unit="tx/s"
              x={data?.series.t ?? []}
              y={data?.series.txPerSecond ?? []}
              color="#2563eb"
              testId="chart-txps"
            />
          </div>
          <div>
            <div class="metric">
              <span>{latest(data?.series.commitLatencyMs)}</span> ms commit latency (at most)
            </div>
            <LineChart
              title="Commit latency"
              unit="ms"
              x={data?.series.t ?? []}
              y={data?.series.commitLatencyMs ?? []}
              color="#db2777"
              testId="chart-latency"
            />
          </div>
        </div>
        <p class="muted small">
          Measured by the console polling each node twice a second: latency is the time from when an entry is
          seen at the primary to when it is seen committed, so it is an upper bound to within the polling
          interval.
        </p>
      </Section>
      <Section title={`Nodes (${data?.nodes.length ?? 0})`}>
        <div class="table-wrap">
          <table data-testid="nodes">
            <thead>
              <tr>
                <th>Node</th>
                <th>Liveness</th>
                <th>Status</th>
                <th>Role</th>
                <th>View</th>
                <th>Commit</th>
                <th>Lag</th>
                <th>RPC address</th>
                <th>Node address</th>
                <th>Certificate expires</th>
                <th>Attestation</th>
              </tr>
            </thead>
            <tbody>
              {data?.nodes.map((n) => (
                <tr
                  key={n.nodeId}
                  data-node={n.nodeId}
                  data-live={String(n.live)}
                  class={n.live ? "" : "down"}
                >
                  <td>
                    <Short id={n.nodeId} /> {n.primary && <span class="tag">primary</span>}
                  </td>
                  <td data-testid="liveness" title={n.error ?? ""}>
                    <Badge value={n.live ? "up" : "unreachable"} />{" "}
                    <span class="small muted">{ago(n.lastSeen)}</span>
                  </td>
                  <td>
                    <Badge value={n.status} />
                  </td>
                  <td data-testid="role">{n.role ?? "—"}</td>
                  <td>{n.view ?? "—"}</td>
                  <td>{n.commitSeqno ?? "—"}</td>
                  <td>{n.commitLag ?? "—"}</td>
                  <td>
                    <code>{n.rpcAddress}</code>
                  </td>
                  <td>
                    <code>{n.nodeAddress ?? "—"}</code>
                  </td>
                  <td class="small">{when(n.nodeCertificateValidTo)}</td>
                  <td class="small">
                    {n.platform ?? "—"} {n.insecure && <span class="tag warn">insecure</span>}
                    <br />
                    <Short id={n.measurement} length={16} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Section>
    </div>
  );
}

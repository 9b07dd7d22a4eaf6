import type { PathStep } from "./receipt.ts";

const W = 560;
const ROW = 46;
const BOX_W = 150;
const BOX_H = 26;

/** The Merkle path from a transaction's leaf up to the signed root, one level per proof step. */
export function MerklePath({
  leaf,
  steps,
  root,
  ok,
}: {
  leaf: string;
  steps: PathStep[];
  root: string;
  ok: boolean;
}) {
  const levels = steps.length + 1;
  const height = levels * ROW + 30;
  const y = (level: number) => height - 20 - level * ROW - BOX_H;
  const mid = W / 2;
  return (
    <svg
      class="merkle"
      width={W}
      height={height}
      viewBox={`0 0 ${W} ${height}`}
      role="img"
      aria-label="Merkle path"
      data-testid="merkle-path"
    >
      {steps.map((s, i) => {
        const level = i;
        const siblingX = s.side === "left" ? mid - BOX_W / 2 - BOX_W - 24 : mid + BOX_W / 2 + 24;
        return (
          <g key={`s${level}`}>
            <line x1={mid} y1={y(level)} x2={mid} y2={y(level + 1) + BOX_H} stroke="#94a3b8" />
            <line
              x1={siblingX + BOX_W / 2}
              y1={y(level)}
              x2={mid}
              y2={y(level + 1) + BOX_H}
              stroke="#94a3b8"
            />
            <rect
              x={siblingX}
              y={y(level)}
              width={BOX_W}
              height={BOX_H}
              rx={4}
              fill="#f1f5f9"
              stroke="#cbd5e1"
            />
            <text x={siblingX + 8} y={y(level) + 17}>
              <title>{s.sibling}</title>
              {s.side} {s.sibling.slice(0, 12)}…
            </text>
          </g>
        );
      })}
      {Array.from({ length: levels }, (_, level) => {
        const isLeaf = level === 0;
        const isRoot = level === levels - 1;
        const value = isLeaf ? leaf : (steps[level - 1]?.result ?? root);
        const fill = isRoot ? (ok ? "#dcfce7" : "#fee2e2") : isLeaf ? "#dbeafe" : "#fff";
        return (
          <g key={`n${level}`}>
            <rect
              x={mid - BOX_W / 2}
              y={y(level)}
              width={BOX_W}
              height={BOX_H}
              rx={4}
              fill={fill}
              stroke="#64748b"
            />
            <text x={mid - BOX_W / 2 + 8} y={y(level) + 17}>
              <title>{value}</title>
              {isRoot ? "root" : isLeaf ? "leaf" : "hash"} {value.slice(0, 10)}…
            </text>
          </g>
        );
      })}
      <text x={mid + BOX_W / 2 + 10} y={y(levels - 1) + 17}>
        {ok ? "signed by the node" : "signature does not match"}
      </text>
    </svg>
  );
}

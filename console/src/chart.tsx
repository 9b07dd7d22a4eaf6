import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

/** A live time-series chart (uPlot). `x` is seconds since the epoch. */
export function LineChart(props: {
  title: string;
  unit: string;
  x: number[];
  y: Array<number | null>;
  color: string;
  testId: string;
}) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    if (!host.current) return;
    const width = () => Math.max(280, (host.current?.clientWidth ?? 400) - 8);
    plot.current = new uPlot(
      {
        title: props.title,
        width: width(),
        height: 180,
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, (max ?? 0) * 1.15)] } },
        axes: [{}, { label: props.unit, size: 56 }],
        series: [
          {},
          { label: props.unit, stroke: props.color, width: 2, fill: `${props.color}22`, spanGaps: true },
        ],
        legend: { show: true },
      },
      [props.x, props.y],
      host.current,
    );
    const onResize = () => plot.current?.setSize({ width: width(), height: 180 });
    addEventListener("resize", onResize);
    return () => {
      removeEventListener("resize", onResize);
      plot.current?.destroy();
    };
  }, []);
  useEffect(() => {
    plot.current?.setData([props.x, props.y]);
  }, [props.x, props.y]);
  return <div class="chart" ref={host} data-testid={props.testId} data-points={props.x.length} />;
}

/** A time-series chart (uPlot, loaded with the first chart so the initial bundle stays small). */
import { useEffect, useRef, useState } from 'preact/hooks';
import type uPlot from 'uplot';

export interface ChartSeries {
  label: string;
  /** One value per x (null: no data in that bucket). */
  values: (number | null)[];
}

const COLORS = ['#2563eb', '#d97706', '#059669', '#dc2626', '#7c3aed', '#0891b2', '#db2777', '#65a30d'];

let lib: Promise<typeof uPlot> | undefined;
function loadUplot(): Promise<typeof uPlot> {
  lib ??= Promise.all([import('uplot'), import('uplot/dist/uPlot.min.css')]).then(([m]) => ((m as { default?: typeof uPlot }).default ?? m) as typeof uPlot);
  return lib;
}

export function Chart(props: { title: string; x: number[]; series: ChartSeries[]; unit: (v: number) => string }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot>();
  const [failed, setFailed] = useState<string>();
  useEffect(() => {
    let gone = false;
    loadUplot().then((UPlot) => {
      if (gone || !box.current) return;
      plot.current?.destroy();
      const width = Math.max(280, box.current.clientWidth);
      const opts: uPlot.Options = {
        width, height: 200,
        series: [{}, ...props.series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false, value: (_u: uPlot, v: number | null) => (v === null ? '-' : props.unit(v)) }))],
        axes: [{}, { values: (_u: uPlot, vals: number[]) => vals.map((v) => props.unit(v)), size: 70 }],
        legend: { live: true },
        cursor: { drag: { x: false, y: false } },
      };
      plot.current = new UPlot(opts, [props.x, ...props.series.map((s) => s.values)] as uPlot.AlignedData, box.current);
    }, (err) => setFailed(String(err)));
    return () => {
      gone = true;
    };
  }, [props.x, props.series]);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const ro = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(280, el.clientWidth), height: 200 }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current?.destroy();
      plot.current = undefined;
    };
  }, []);
  const points = props.series.reduce((n, s) => n + s.values.filter((v) => v !== null).length, 0);
  const latest = props.series.map((s) => {
    const v = [...s.values].reverse().find((x) => x !== null);
    return `${s.label}: ${v === undefined || v === null ? 'no data' : props.unit(v)}`;
  }).join('; ');
  return (
    <figure class="chart" data-points={points} data-series={props.series.length}>
      <figcaption>{props.title}</figcaption>
      {failed ? <p class="error" role="alert">The chart could not load: {failed}</p> : <div ref={box} class="chart-box" role="img" aria-label={`${props.title}: ${points} data points. Latest: ${latest}`} />}
    </figure>
  );
}

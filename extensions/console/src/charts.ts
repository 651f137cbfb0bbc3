/** Charts of the console, drawn with Chart.js (bundled at build time: nothing is fetched). */
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  Tooltip
} from 'chart.js';

import { fmtAmount } from './dom';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

/** Colours of series, in order (then repeated). */
export const COLORS = [
  '#1565c0',
  '#2e7d32',
  '#ef6c00',
  '#6a1b9a',
  '#c62828',
  '#00838f',
  '#9e9d24',
  '#4e342e',
  '#ad1457',
  '#37474f',
  '#5c6bc0',
  '#8d6e63'
];

/**
 * What a chart shows, in words, for screen readers and anyone who cannot read the canvas
 * (role "img", aria-label): its name (the canvas's own aria-label, else the value), the
 * first and last label, and the values on its axis as the axis draws them, e.g.
 * "GPU-hours by user, 2026-11-08 to 2026-12-07; axis 0, 0.01".
 */
function describe(chart: Chart, yTitle: string): void {
  const canvas = chart.canvas;
  const name = (canvas.dataset.ghName ??= canvas.getAttribute('aria-label') || yTitle);
  const labels = (chart.data.labels ?? []).map(String);
  const span = labels.length > 1 ? `${labels[0]} to ${labels[labels.length - 1]}` : labels[0];
  const ticks = chart.scales.y?.ticks.map(t => fmtAmount(t.value)) ?? [];
  const text = [name, span].filter(Boolean).join(', ');
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', ticks.length ? `${text}; axis ${ticks.join(', ')}` : text);
}

/**
 * Stacked bars: one bar per label (e.g. a day), one stacked part per series (e.g. a
 * user). The canvas's parent should have a height; the chart fills it. Replaces a chart
 * drawn earlier on the same canvas. Values on the axis and in the tooltips are rounded as
 * everywhere in the console (fmtAmount), and the axis steps by 0.01 at the least, so that
 * no two of its values read the same (a day of a few GPU-seconds has the axis 0, 0.01).
 */
export function stackedBars(
  canvas: HTMLCanvasElement,
  labels: string[],
  series: { label: string; data: number[] }[],
  yTitle: string
): Chart {
  Chart.getChart(canvas)?.destroy();
  return new Chart(canvas, {
    type: 'bar',
    data: {
      labels,
      datasets: series.map((s, i) => ({
        label: s.label,
        data: s.data,
        backgroundColor: COLORS[i % COLORS.length],
        borderWidth: 0
      }))
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      responsive: true,
      plugins: {
        legend: { display: series.length > 1 || series[0]?.label !== '', position: 'bottom' },
        tooltip: {
          mode: 'index',
          intersect: false,
          callbacks: {
            label: item =>
              `${item.dataset.label ? item.dataset.label + ': ' : ''}${fmtAmount(item.parsed.y ?? 0)}`
          }
        }
      },
      scales: {
        x: { stacked: true, grid: { display: false } },
        y: {
          stacked: true,
          beginAtZero: true,
          title: { display: true, text: yTitle },
          ticks: { precision: 2, callback: value => fmtAmount(Number(value)) }
        }
      }
    },
    plugins: [{ id: 'gpuhubDescribe', afterUpdate: chart => describe(chart, yTitle) }]
  });
}

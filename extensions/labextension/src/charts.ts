/**
 * Per-device charts of utilization and memory over the last minutes, drawn with Chart.js
 * (bundled into the labextension at build time).
 */
import { TranslationBundle } from '@jupyterlab/translation';
import {
  Chart,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip
} from 'chart.js';

import { IDevice } from './types';

Chart.register(LineController, LineElement, PointElement, LinearScale, Filler, Legend, Tooltip);

/** Two line charts of one device: utilization (%) and memory (GB), x = seconds ago. */
export class DeviceCharts {
  /** The element holding both charts. */
  readonly node: HTMLElement;

  /** Build the charts for a device (call `update` with fresh data). */
  constructor(trans: TranslationBundle) {
    this.node = document.createElement('div');
    this.node.className = 'jp-gpuhub-charts';
    this._util = this._chart(trans.__('Utilization %'), 100, '#2e7d32');
    this._mem = this._chart(trans.__('Memory GB'), undefined, '#1565c0');
  }

  /** Show the device's history; utilization that NVML does not give is left out, not 0. */
  update(device: IDevice): void {
    const now = Date.now() / 1000;
    const util: { x: number; y: number }[] = [];
    const mem: { x: number; y: number }[] = [];
    let total = 0;
    for (const s of device.history) {
      const x = -(now - s.t);
      if (s.utilization_pct !== null) {
        util.push({ x, y: s.utilization_pct });
      }
      mem.push({ x, y: s.memory_used_mb / 1024 });
      total = Math.max(total, s.memory_total_mb / 1024);
    }
    this._util.data.datasets[0].data = util;
    this._util.canvas.parentElement!.hidden = util.length === 0 && device.kind === 'mig';
    this._mem.data.datasets[0].data = mem;
    (this._mem.options.scales!.y as any).max = total || undefined;
    this._util.update('none');
    this._mem.update('none');
  }

  /** Free the charts. */
  dispose(): void {
    this._util.destroy();
    this._mem.destroy();
  }

  private _chart(label: string, max: number | undefined, color: string): Chart<'line'> {
    const box = document.createElement('div');
    box.className = 'jp-gpuhub-chart';
    const canvas = document.createElement('canvas');
    box.appendChild(canvas);
    this.node.appendChild(box);
    return new Chart(canvas, {
      type: 'line',
      data: {
        datasets: [
          {
            label,
            data: [],
            borderColor: color,
            backgroundColor: color + '33',
            fill: true,
            pointRadius: 0,
            borderWidth: 1.5,
            tension: 0.2
          }
        ]
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        parsing: false,
        normalized: true,
        plugins: { legend: { display: true, labels: { boxWidth: 10 } } },
        scales: {
          x: {
            type: 'linear',
            min: -600,
            max: 0,
            ticks: { stepSize: 120, callback: v => `${Math.round(-Number(v) / 60)}m` }
          },
          y: { type: 'linear', min: 0, max }
        }
      }
    });
  }

  private _mem: Chart<'line'>;
  private _util: Chart<'line'>;
}

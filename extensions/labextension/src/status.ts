/**
 * The status bar item: per leased device "H100 · 73% · 21/80 GB", the GPU-hours left,
 * "simulated" when the devices are; or plainly why there is nothing to show ("No GPU" on
 * a CPU-only server, which is not the same as a missing lease or an unreachable service).
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { deviceSummary, hoursLeft } from './format';
import { GpuModel } from './model';
import { IIdleWarning } from './types';

/** "45 min", "2 h", "1 h 30 min". */
export function duration(seconds: number, trans: TranslationBundle): string {
  const minutes = Math.max(0, Math.round(seconds / 60));
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  if (h && m) {
    return trans.__('%1 h %2 min', h, m);
  }
  return h ? trans.__('%1 h', h) : trans.__('%1 min', m);
}

/** "15:30 UTC" (with the date when it is not today, in UTC). */
export function utcTime(iso: string, now: Date = new Date()): string {
  const t = new Date(iso);
  const hm = t.toISOString().slice(11, 16);
  const day = t.toISOString().slice(0, 10);
  return day === now.toISOString().slice(0, 10) ? `${hm} UTC` : `${day} ${hm} UTC`;
}

/** "GPUs idle for 45 min: this server will be stopped at 15:30 UTC". */
export function idleWarningText(
  w: IIdleWarning,
  trans: TranslationBundle,
  now: Date = new Date()
): string {
  const idle = (now.getTime() - new Date(w.since).getTime()) / 1000;
  return trans.__(
    'GPUs idle for %1: this server will be stopped at %2',
    duration(idle, trans),
    utcTime(w.reclaim_at, now)
  );
}

/** A one-line status of this server's GPUs; clicking it opens the GPU panel. */
export class GpuStatus extends Widget {
  /** Follow `model`; `onClick` opens the panel. */
  constructor(
    private readonly _model: GpuModel,
    private readonly _trans: TranslationBundle,
    onClick: () => void
  ) {
    super();
    this.addClass('jp-gpuhub-status');
    this.node.title = _trans.__('GPUs of this server (gpuhub): click for details');
    this.node.addEventListener('click', onClick);
    _model.changed.connect(this.update, this);
    this.update();
  }

  /** Re-render after every poll. */
  protected onUpdateRequest(): void {
    const warning = this._model.idleWarning;
    const text = statusText(this._model, this._trans);
    this.node.textContent = warning ? `⚠ ${idleWarningText(warning, this._trans)} | ${text}` : text;
    this.node.dataset.state = this._model.state;
    this.node.dataset.idleWarning = warning ? 'true' : 'false';
  }
}

/** The status line for the model's state. */
export function statusText(model: GpuModel, trans: TranslationBundle): string {
  switch (model.state) {
    case 'loading':
      return trans.__('GPU: …');
    case 'missing':
      return trans.__('GPU: gpuhub server extension not installed');
    case 'error':
      return trans.__('GPU: unavailable');
    case 'no-gpu':
      return trans.__('No GPU (CPU-only server)');
    case 'no-lease':
      return trans.__('No GPU lease on this server');
  }
  const parts = model.devices.map(d => deviceSummary(d, trans));
  if (parts.length === 0) {
    parts.push(trans.__('GPU: no devices sampled'));
  }
  const left = model.me ? hoursLeft(model.me.quotas, trans) : null;
  if (left) {
    parts.push(left);
  }
  let text = parts.join(' | ');
  if (model.simulated) {
    text += ' ' + trans.__('(simulated)');
  }
  return text;
}

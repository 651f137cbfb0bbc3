/**
 * The status bar item: per leased device "H100 · 73% · 21/80 GB", the GPU-hours left,
 * "simulated" when the devices are; or plainly why there is nothing to show.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { deviceSummary, hoursLeft } from './format';
import { GpuModel } from './model';

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
    this.node.textContent = statusText(this._model, this._trans);
    this.node.dataset.state = this._model.state;
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

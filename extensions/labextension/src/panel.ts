/**
 * The GPU side panel: per-device charts and processes, the lease, the quota bars, and
 * warnings near the GPU-hour budget or while held GPUs sit idle.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { DeviceCharts } from './charts';
import { deviceSummary, gb, nodesText, since } from './format';
import { GpuModel } from './model';
import { duration, idleWarningText } from './status';
import { IDevice, IQuotaStatus } from './types';
import { el } from './dom';

/** Below this mean utilization over the kept minutes a held device counts as idle. */
const IDLE_PCT = 5;

/** Samples must span at least this long (seconds) before the idle warning shows. */
const IDLE_AFTER_S = 5 * 60;

/** The GPU panel's icon: a chip. */
export const gpuIcon = new LabIcon({
  name: 'gpuhub:gpu',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">' +
    '<path class="jp-icon3" fill="#616161" d="M9 3v2H7a2 2 0 0 0-2 2v2H3v2h2v2H3v2h2v2a2 2 0 0 0 ' +
    '2 2h2v2h2v-2h2v2h2v-2h2a2 2 0 0 0 2-2v-2h2v-2h-2v-2h2V9h-2V7a2 2 0 0 0-2-2h-2V3h-2v2h-2V3H9zm-2 ' +
    '4h10v10H7V7zm2 2v6h6V9H9z"/></svg>'
});

/** A labelled bar: `used` of `max`, red from `warnAt` on. */
function bar(label: string, used: number, max: number, warnAt: number): HTMLElement {
  const row = el('div', 'jp-gpuhub-bar');
  row.appendChild(el('div', 'jp-gpuhub-bar-label', label));
  const track = el('div', 'jp-gpuhub-bar-track');
  const fill = el('div', 'jp-gpuhub-bar-fill');
  const frac = max > 0 ? Math.min(1, used / max) : 1;
  fill.style.width = `${(frac * 100).toFixed(1)}%`;
  if (frac >= warnAt) {
    fill.classList.add('jp-mod-warn');
  }
  track.appendChild(fill);
  row.appendChild(track);
  return row;
}

/** The side panel of this server's GPUs, lease and quota. */
export class GpuPanel extends Widget {
  /** Follow `model`, rendering only while visible. */
  constructor(
    private readonly _model: GpuModel,
    private readonly _trans: TranslationBundle
  ) {
    super();
    this.id = 'gpuhub-panel';
    this.addClass('jp-gpuhub-panel');
    this.title.icon = gpuIcon;
    this.title.caption = _trans.__('GPUs (gpuhub)');
    this._status = el('div', 'jp-gpuhub-state');
    this._devicesNode = el('div', 'jp-gpuhub-devices');
    this._info = el('div', 'jp-gpuhub-info');
    this.node.append(
      el('h2', 'jp-gpuhub-title', _trans.__('GPUs')),
      this._status,
      this._devicesNode,
      this._info
    );
    _model.changed.connect(() => {
      if (this.isVisible) {
        this.update();
      }
    });
  }

  /** The fraction of the GPU-hour budget from which the panel warns. */
  warnFraction = 0.9;

  /** Free the charts. */
  dispose(): void {
    for (const c of this._charts.values()) {
      c.charts.dispose();
    }
    this._charts.clear();
    super.dispose();
  }

  /** Refresh when shown. */
  protected onAfterShow(): void {
    this.update();
  }

  /** Render the model's state. */
  protected onUpdateRequest(): void {
    const m = this._model;
    const trans = this._trans;
    this._status.replaceChildren();
    this._info.replaceChildren();
    const plain: Record<string, string> = {
      loading: trans.__('Asking the server for its GPUs…'),
      missing: trans.__(
        'The gpuhub server extension (jupyter_gpuhub) is not installed or not enabled on this server, so there is nothing to show.'
      ),
      error: trans.__('The server did not answer: %1', m.message ?? ''),
      'no-gpu': m.profile
        ? trans.__('No GPU: this server was started CPU only (profile %1).', m.profile)
        : trans.__('No GPU: this server was started CPU only.'),
      'no-lease': trans.__('No GPU lease on this server.')
    };
    if (m.state !== 'ok') {
      this._status.appendChild(el('p', 'jp-gpuhub-plain', plain[m.state]));
      if (m.state === 'no-gpu') {
        this._status.appendChild(
          el(
            'p',
            'jp-gpuhub-muted jp-gpuhub-no-gpu',
            trans.__(
              'It uses none of your GPU-hours. To run a notebook on a GPU, click "Run as GPU job" in its toolbar: the job goes to the GPU pool, under the quota below.'
            )
          )
        );
      }
      this._syncDevices([]);
      if (m.state === 'no-lease' || m.state === 'no-gpu') {
        this._renderQueued();
        this._renderQuotas();
      }
      return;
    }
    if (m.simulated) {
      this._status.appendChild(
        el('p', 'jp-gpuhub-simulated', trans.__('Simulated devices: the values are synthetic.'))
      );
    }
    if (m.message) {
      this._status.appendChild(el('p', 'jp-gpuhub-warning', m.message));
    }
    this._renderIdleWarning();
    if (this._idle()) {
      this._status.appendChild(
        el(
          'p',
          'jp-gpuhub-warning',
          trans.__(
            'Your GPUs have been idle while held; stop the server when you are done so others can use them.'
          )
        )
      );
    }
    this._syncDevices(m.devices);
    this._renderLease();
    this._renderQueued();
    this._renderQuotas();
  }

  /** GPU-idle reclaim's warning with its "Keep for …" buttons. */
  private _renderIdleWarning(): void {
    const trans = this._trans;
    const w = this._model.idleWarning;
    if (!w) {
      return;
    }
    const box = el('div', 'jp-gpuhub-warning jp-gpuhub-idle-warning');
    box.appendChild(el('p', '', idleWarningText(w, trans)));
    const said = el('p', 'jp-gpuhub-muted', this._keepError ?? '');
    for (const seconds of w.can_keep_for) {
      const button = el('button', 'jp-Button jp-mod-styled jp-gpuhub-keep');
      button.textContent = trans.__('Keep for %1', duration(seconds, trans));
      button.dataset.seconds = String(seconds);
      button.addEventListener('click', () => {
        button.disabled = true;
        this._model.keep(seconds).then(
          () => {
            this._keepError = null;
            this.update();
          },
          (err: unknown) => {
            this._keepError = err instanceof Error ? err.message : String(err);
            this.update();
          }
        );
      });
      box.appendChild(button);
    }
    box.appendChild(said);
    this._status.appendChild(box);
  }

  private _syncDevices(devices: IDevice[]): void {
    const keep = new Set(devices.map(d => d.uuid));
    for (const [uuid, c] of this._charts) {
      if (!keep.has(uuid)) {
        c.charts.dispose();
        c.node.remove();
        this._charts.delete(uuid);
      }
    }
    for (const d of devices) {
      let c = this._charts.get(d.uuid);
      if (!c) {
        const node = el('section', 'jp-gpuhub-device');
        const head = el('h3', 'jp-gpuhub-device-head');
        const facts = el('div', 'jp-gpuhub-facts');
        const charts = new DeviceCharts(this._trans);
        const procs = el('div', 'jp-gpuhub-procs');
        node.append(head, facts, charts.node, procs);
        this._devicesNode.appendChild(node);
        c = { node, head, facts, charts, procs };
        this._charts.set(d.uuid, c);
      }
      this._renderDevice(d, c);
    }
  }

  private _renderDevice(d: IDevice, c: GpuPanel.IDeviceView): void {
    const trans = this._trans;
    c.head.textContent =
      deviceSummary(d, trans) + (d.simulated ? ' ' + trans.__('(simulated)') : '');
    c.head.title = `${d.name} · ${d.uuid}`;
    const s = d.latest;
    const facts: string[] = [];
    if (s) {
      facts.push(
        trans.__(
          'Utilization: %1',
          s.utilization_pct === null ? trans.__('n/a') : `${s.utilization_pct.toFixed(0)}%`
        ),
        trans.__('Memory: %1 of %2 GB', gb(s.memory_used_mb), gb(s.memory_total_mb))
      );
      if (s.temperature_c !== null) {
        facts.push(trans.__('Temperature: %1 °C', s.temperature_c.toFixed(0)));
      }
      if (s.power_w !== null) {
        const limit = s.power_limit_w === null ? '' : ` / ${s.power_limit_w.toFixed(0)}`;
        facts.push(trans.__('Power: %1 W', s.power_w.toFixed(0) + limit));
      }
      if (s.sm_clock_mhz !== null) {
        facts.push(trans.__('SM clock: %1 MHz', s.sm_clock_mhz.toFixed(0)));
      }
    }
    c.facts.replaceChildren(...facts.map(f => el('span', 'jp-gpuhub-fact', f)));
    if (s?.scope === 'lease') {
      c.facts.appendChild(
        el(
          'p',
          'jp-gpuhub-muted jp-gpuhub-scope',
          trans.__(
            'Shared GPU: utilization and memory are those of your processes, not of the others on this GPU.'
          )
        )
      );
    }
    c.charts.update(d);
    c.procs.replaceChildren();
    const procs = s?.processes ?? [];
    if (procs.length === 0) {
      c.procs.appendChild(el('p', 'jp-gpuhub-muted', trans.__('No processes on this device.')));
      return;
    }
    const table = el('table', 'jp-gpuhub-table');
    const head = el('tr', '');
    for (const h of [trans.__('PID'), trans.__('Process'), trans.__('Memory')]) {
      head.appendChild(el('th', '', h));
    }
    table.appendChild(head);
    for (const p of procs) {
      const row = el('tr', '');
      row.append(
        el('td', '', String(p.pid)),
        el('td', '', p.name),
        el('td', '', `${gb(p.memory_mb)} GB`)
      );
      table.appendChild(row);
    }
    c.procs.appendChild(table);
  }

  private _renderLease(): void {
    const trans = this._trans;
    const lease = this._model.lease;
    if (!lease) {
      const why = this._model.leaseError;
      if (why) {
        this._info.appendChild(el('p', 'jp-gpuhub-muted', trans.__('Lease not known: %1', why)));
      }
      return;
    }
    const box = el('section', 'jp-gpuhub-lease');
    box.appendChild(el('h3', '', trans.__('Lease %1', lease.id)));
    const rows: [string, string][] = [
      [trans.__('What'), lease.label || lease.profile || '—'],
      [trans.__('Where'), nodesText(lease.node)],
      [trans.__('Since'), since(lease.granted_at, trans)],
      [trans.__('GPU-hours so far'), lease.gpu_hours.toFixed(2)]
    ];
    if (lease.simulated) {
      rows.push([trans.__('Devices'), trans.__('simulated')]);
    }
    const dl = el('dl', 'jp-gpuhub-dl');
    for (const [k, v] of rows) {
      dl.append(el('dt', '', k), el('dd', '', v));
    }
    box.appendChild(dl);
    this._info.appendChild(box);
  }

  /** The user's queued requests (servers and jobs): why each waits, and until when. */
  private _renderQueued(): void {
    const trans = this._trans;
    const queued = (this._model.me?.queued ?? []).filter(x => x.waiting);
    if (queued.length === 0) {
      return;
    }
    const box = el('section', 'jp-gpuhub-queued');
    box.appendChild(el('h3', '', trans.__('Queued requests')));
    for (const lease of queued) {
      const w = lease.waiting!;
      const what = lease.label || lease.profile || trans.__('lease %1', lease.id);
      const line = el(
        'p',
        'jp-gpuhub-waiting',
        trans.__('%1 (#%2) — Waiting: %3 · %4', what, w.position, w.message, w.estimate.message)
      );
      line.title = w.summary;
      box.appendChild(line);
      if (w.alternatives.length > 0) {
        const free = w.alternatives.map(a => a.message).join(', ');
        box.appendChild(el('p', 'jp-gpuhub-muted', trans.__('Instead: %1', free)));
      }
    }
    this._info.appendChild(box);
  }

  private _renderQuotas(): void {
    const trans = this._trans;
    const me = this._model.me;
    const box = el('section', 'jp-gpuhub-quotas');
    box.appendChild(el('h3', '', trans.__('Quota')));
    if (!me) {
      const why = this._model.meError ?? trans.__('asking the gpuhub service…');
      box.appendChild(el('p', 'jp-gpuhub-muted', trans.__('Quota not known: %1', why)));
      this._info.appendChild(box);
      return;
    }
    if (me.quotas.length === 0) {
      box.appendChild(el('p', 'jp-gpuhub-muted', trans.__('No quota limits you.')));
    }
    for (const q of me.quotas) {
      box.appendChild(this._quota(q));
    }
    this._info.appendChild(box);
  }

  private _quota(q: IQuotaStatus): HTMLElement {
    const trans = this._trans;
    const node = el('div', 'jp-gpuhub-quota');
    const who = q.kind === 'user' ? trans.__('Your quota') : trans.__('Group %1', q.name);
    node.appendChild(el('h4', '', who));
    const spec = q.quota;
    if (!spec) {
      node.appendChild(el('p', 'jp-gpuhub-muted', trans.__('unlimited')));
      return node;
    }
    if (typeof spec.max_units === 'number') {
      const used = q.units_active + q.units_queued;
      node.appendChild(
        bar(trans.__('GPU units: %1 of %2', used, spec.max_units), used, spec.max_units, 1)
      );
    }
    if (typeof spec.gpu_hours === 'number' && typeof q.gpu_hours_used === 'number') {
      const used = q.gpu_hours_used;
      node.appendChild(
        bar(
          trans.__('GPU-hours: %1 of %2', used.toFixed(1), spec.gpu_hours),
          used,
          spec.gpu_hours,
          this.warnFraction
        )
      );
      const reset = q.period ?? (q.period_end ? new Date(q.period_end).toLocaleString() : '');
      if (reset) {
        node.appendChild(el('p', 'jp-gpuhub-muted', trans.__('Period: %1', reset)));
      }
      if (spec.gpu_hours > 0 && used / spec.gpu_hours >= this.warnFraction) {
        node.appendChild(
          el(
            'p',
            'jp-gpuhub-warning',
            trans.__(
              'You have used %1 of your %2 GPU-hours this period; stop GPU servers you do not need.',
              used.toFixed(1),
              spec.gpu_hours
            )
          )
        );
      }
    }
    return node;
  }

  /**
   * Whether every device with utilization has sat idle over the kept minutes; only once
   * the samples span IDLE_AFTER_S, so a freshly opened tab does not cry wolf.
   */
  private _idle(): boolean {
    if (!this._model.lease) {
      return false;
    }
    let seen = false;
    for (const d of this._model.devices) {
      const h = d.history;
      if (h.length < 2 || h[h.length - 1].t - h[0].t < IDLE_AFTER_S) {
        return false;
      }
      const u = h.map(s => s.utilization_pct).filter((v): v is number => v !== null);
      if (u.length === 0) {
        continue;
      }
      seen = true;
      if (u.reduce((a, b) => a + b, 0) / u.length >= IDLE_PCT) {
        return false;
      }
    }
    return seen;
  }

  private _charts = new Map<string, GpuPanel.IDeviceView>();
  private _keepError: string | null = null;
  private _devicesNode: HTMLElement;
  private _info: HTMLElement;
  private _status: HTMLElement;
}

/** Types of the GpuPanel. */
export namespace GpuPanel {
  /** The elements of one device's section. */
  export interface IDeviceView {
    node: HTMLElement;
    head: HTMLElement;
    facts: HTMLElement;
    charts: DeviceCharts;
    procs: HTMLElement;
  }
}

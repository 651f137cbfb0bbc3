/**
 * The Jobs panel (left sidebar): my GPU jobs with their state, elapsed time and GPU-hours,
 * a "spot" badge on spot jobs, the attempt a retried job is on and a warning while a
 * preemption notice runs; the selected job's details (its attempts, and when the next one
 * starts while it waits out a retry's backoff), a live tail of its log and its actions
 * (cancel, open the executed notebook, open the output folder, run again); my recurring
 * definitions.
 *
 * One Lumino `Poll` reads the list and the selected job's new log text; it stands by while
 * the panel is hidden (or the tab is), and backs off while the server or service fails.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';
import { Poll } from '@lumino/polling';
import { Widget } from '@lumino/widgets';

import { clock } from './format';
import { JobsAPI } from './jobs-api';
import { ApiError } from './request';
import { IDefinition, IJob, IJobAttempt, JobStatus, LIVE_STATUSES } from './jobs-types';
import { el } from './dom';

/** Keep at most this much of a log in the view (characters). */
const LOG_KEEP = 256 * 1024;
/** Read at most this many log pages per tick. */
const LOG_PAGES = 4;
/** The recurring definitions change rarely: read them every this many ticks. */
const DEFINITIONS_EVERY = 10;

/** The Jobs panel's icon: a stack of runs. */
export const jobsIcon = new LabIcon({
  name: 'gpuhub:jobs',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">' +
    '<path class="jp-icon3" fill="#616161" d="M4 4h16v4H4V4zm0 6h16v4H4v-4zm0 6h10v4H4v-4zm12 ' +
    '0l5 2-5 2v-4z"/></svg>'
});

/** "1 h 05 min", "4 min 12 s", "8 s". */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s >= 3600) {
    return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
  }
  if (s >= 60) {
    return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  }
  return `${s} s`;
}

/** GPU-hours with the digits that matter: "12.3", "0.42", "0.003". */
export function hours(value: number | null | undefined): string {
  const v = value ?? 0;
  return v >= 10 ? v.toFixed(1) : v >= 0.1 || v === 0 ? v.toFixed(2) : v.toFixed(3);
}

/** The service's times in a sentence ("notice at 2026-12-07 08:37:00 UTC", or ISO 8601
 * "2026-12-07T08:37:00.06+00:00") on the panel's clock, to the second ("notice at 08:37:00"). */
export function clockTimes(text: string): string {
  return text
    .replace(/(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) UTC/g, (_, day, time) =>
      clock(`${day}T${time}Z`, true)
    )
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:\d\d)/g, iso =>
      clock(iso, true)
    );
}

/** Seconds the job has run (so far, for a running one), or null before it started. */
export function elapsed(job: IJob, now = Date.now()): number | null {
  if (!job.started_at) {
    return null;
  }
  if (job.ended_at || !LIVE_STATUSES.includes(job.status)) {
    return job.elapsed_s;
  }
  return (now - Date.parse(job.started_at)) / 1000;
}

/** The panel's actions on the rest of JupyterLab. */
export interface IJobsPanelActions {
  /** Open a file of the server's root folder (the executed notebook). */
  openFile(path: string): void;
  /** Show a folder of the server's root in the file browser. */
  openFolder(path: string): void;
  /** Show the dialog pre-filled from a past job; the new job, or null. */
  runAgain(job: IJob): Promise<IJob | IDefinition | null>;
}

/** The sidebar panel of my GPU jobs. */
export class JobsPanel extends Widget {
  constructor(
    private readonly _api: JobsAPI,
    private readonly _trans: TranslationBundle,
    private readonly _actions: IJobsPanelActions,
    refreshRate = 3000
  ) {
    super();
    this.id = 'gpuhub-jobs';
    this.addClass('jp-gpuhub-jobs');
    this.title.icon = jobsIcon;
    this.title.caption = _trans.__('GPU jobs (gpuhub)');
    const head = el('div', 'jp-gpuhub-jobs-head');
    const refresh = el('button', 'jp-mod-styled jp-gpuhub-jobs-refresh', _trans.__('Refresh'));
    refresh.addEventListener('click', () => void this.refresh());
    head.append(el('h2', 'jp-gpuhub-title', _trans.__('GPU jobs')), refresh);
    this._status = el('div', 'jp-gpuhub-jobs-status');
    this._list = el('div', 'jp-gpuhub-jobs-list');
    this._detail = el('section', 'jp-gpuhub-job-detail');
    this._log = el('pre', 'jp-gpuhub-job-log');
    this._defs = el('section', 'jp-gpuhub-job-defs');
    this.node.append(head, this._status, this._list, this._detail, this._log, this._defs);
    this._poll = new Poll({
      auto: true,
      factory: () => this._tick(),
      frequency: { interval: refreshRate, backoff: true, max: 2 * 60 * 1000 },
      name: '@gpuhub/jupyterlab-gpuhub:JobsPanel',
      standby: () => !this.isVisible || 'when-hidden'
    });
  }

  /** The id of the selected job, or null. */
  get selected(): number | null {
    return this._selected;
  }

  /** Select a job (its details and log show). */
  select(id: number | null): void {
    if (id !== this._selected) {
      this._selected = id;
      this._logText = '';
      this._logOffset = 0;
      this._logComplete = false;
      this._log.textContent = '';
    }
    this._render();
    void this.refresh();
  }

  /** Milliseconds between polls. */
  set refreshRate(ms: number) {
    this._poll.frequency = { ...this._poll.frequency, interval: ms };
  }

  /** Poll now (the recurring definitions too). */
  refresh(): Promise<void> {
    this._ticks = 0;
    return this._poll.refresh();
  }

  /** Stop polling. */
  dispose(): void {
    this._poll.dispose();
    super.dispose();
  }

  /** Poll at once when shown. */
  protected onAfterShow(): void {
    void this.refresh();
  }

  private async _tick(): Promise<void> {
    try {
      this._jobs = await this._api.jobs();
      this._error = null;
      this._missing = false;
      if (this._ticks++ % DEFINITIONS_EVERY === 0) {
        try {
          this._definitions = await this._api.definitions();
        } catch {
          this._definitions = []; // a service without definitions still lists jobs
        }
      }
      if (this._selected !== null && !this._logComplete) {
        try {
          await this._readLog(this._selected);
        } catch (err) {
          // no log yet (or not readable): the list still refreshes
          this._log.textContent = this._logText || (err as Error).message;
        }
      }
    } catch (err) {
      const e = err as ApiError;
      this._missing = e instanceof ApiError && e.missing;
      this._error = e.message ?? String(err);
      this._render();
      throw err; // the poll backs off
    }
    this._render();
  }

  private async _readLog(id: number): Promise<void> {
    for (let page = 0; page < LOG_PAGES; page++) {
      const chunk = await this._api.log(id, this._logOffset);
      if (id !== this._selected) {
        return;
      }
      this._logText = (this._logText + chunk.text).slice(-LOG_KEEP);
      this._logOffset = chunk.next_offset;
      this._logComplete = chunk.complete;
      if (!chunk.text || chunk.complete) {
        break;
      }
    }
    const atEnd = this._log.scrollTop + this._log.clientHeight >= this._log.scrollHeight - 4;
    this._log.textContent = this._logText || this._trans.__('No output yet.');
    if (atEnd) {
      this._log.scrollTop = this._log.scrollHeight;
    }
  }

  private _render(): void {
    const trans = this._trans;
    this._status.replaceChildren();
    if (this._missing) {
      this._status.appendChild(
        el(
          'p',
          'jp-gpuhub-plain',
          trans.__(
            'The gpuhub server extension (jupyter_gpuhub) is not installed or not enabled on this server, so there are no GPU jobs to show.'
          )
        )
      );
    } else if (this._error) {
      this._status.appendChild(
        el('p', 'jp-gpuhub-warning', trans.__('Jobs not known: %1', this._error))
      );
    }
    this._renderList();
    this._renderDetail();
    this._renderDefinitions();
  }

  private _renderList(): void {
    const trans = this._trans;
    this._list.replaceChildren();
    if (this._jobs.length === 0 && !this._error) {
      this._list.appendChild(
        el(
          'p',
          'jp-gpuhub-muted',
          trans.__('No jobs yet. Use "Run as GPU job" in a notebook\'s toolbar or on a file.')
        )
      );
      return;
    }
    for (const job of this._jobs) {
      const row = el('div', 'jp-gpuhub-job');
      row.dataset.id = String(job.id);
      row.dataset.status = job.status;
      row.classList.toggle('jp-mod-selected', job.id === this._selected);
      const name = el('span', 'jp-gpuhub-job-name', `#${job.id} ${job.name}`);
      name.title = job.path;
      const state = el('span', `jp-gpuhub-job-state jp-gpuhub-job-${job.status}`, this._state(job));
      const badges = el('span', 'jp-gpuhub-job-badges');
      if (job.tier === 'spot') {
        const spot = el('span', 'jp-gpuhub-job-tier', trans.__('spot'));
        spot.title = trans.__(
          'Spot (preemptible): may be stopped for guaranteed work and run again'
        );
        badges.appendChild(spot);
      }
      badges.appendChild(state);
      const facts: string[] = [];
      if (job.status === 'queued' && job.next_attempt_at) {
        // between attempts: the retry's backoff runs
        facts.push(trans.__('attempt %1 at %2', job.attempt, clock(job.next_attempt_at)));
      } else if ((job.attempt ?? 1) > 1) {
        facts.push(trans.__('attempt %1', job.attempt));
      }
      if (job.shape_text) {
        facts.push(job.shape_text);
      }
      const secs = elapsed(job);
      if (secs !== null) {
        facts.push(duration(secs));
      }
      facts.push(trans.__('%1 GPU-h', hours(job.gpu_hours)));
      const line = el('span', 'jp-gpuhub-muted jp-gpuhub-job-facts', facts.join(' · '));
      row.append(name, badges, line);
      const warning = this._preemption(job);
      if (warning) {
        row.appendChild(warning);
      }
      row.addEventListener('click', () => this.select(job.id));
      this._list.appendChild(row);
    }
  }

  private _state(job: IJob): string {
    const trans = this._trans;
    if (job.status === 'queued' && job.position !== null && job.position !== undefined) {
      return trans.__('queued (#%1)', job.position);
    }
    return this._statusText(job.status);
  }

  /** A job's or attempt's status in words. */
  private _statusText(status: JobStatus): string {
    const trans = this._trans;
    switch (status) {
      case 'queued':
        return trans.__('queued');
      case 'starting':
        return trans.__('starting');
      case 'running':
        return trans.__('running');
      case 'succeeded':
        return trans.__('succeeded');
      case 'failed':
        return trans.__('failed');
      case 'cancelled':
        return trans.__('cancelled');
      case 'timed_out':
        return trans.__('timed out');
      case 'node_failed':
        return trans.__('node failed');
      case 'preempted':
        return trans.__('preempted');
      default:
        return status;
    }
  }

  /** The warning while the job runs under a preemption notice ("preempted: checkpoint
   * now, stops by 14:05"); null without one. */
  private _preemption(job: IJob): HTMLElement | null {
    const trans = this._trans;
    const notice = job.preemption;
    if (!notice || !LIVE_STATUSES.includes(job.status)) {
      return null;
    }
    const past = Date.parse(notice.deadline) <= Date.now();
    const text = past
      ? trans.__('preempted: its time ran out at %1; it is being stopped', clock(notice.deadline))
      : trans.__('preempted: checkpoint now, stops by %1', clock(notice.deadline));
    const p = el('p', 'jp-gpuhub-warning jp-gpuhub-job-preempt', text);
    p.title = trans.__(
      'Its GPUs are taken back for guaranteed work (notice at %1). It gets SIGUSR1 and $GPUHUB_PREEMPT_FILE; gpuhub.checkpoint saves on that. It runs again from its checkpoints while its retries last.',
      clock(notice.notice_at)
    );
    return p;
  }

  /** Why an attempt ended, in words: its status, and the failure class it was retried for
   * where that says more ("failed (out of memory)"). */
  private _ended(a: IJobAttempt): string {
    const trans = this._trans;
    const status = this._statusText(a.status);
    if (a.failure === 'out_of_memory') {
      return trans.__('%1 (out of memory)', status);
    }
    return status;
  }

  /** Every attempt of a retried job, oldest first: its number, how it ended, why, and its
   * GPU-hours; null for a job on its first attempt. */
  private _attempts(job: IJob): HTMLElement | null {
    const trans = this._trans;
    const attempts = job.attempts ?? [];
    if (attempts.length < 2) {
      return null;
    }
    const list = el('ol', 'jp-gpuhub-job-attempts');
    for (const a of attempts) {
      const item = el('li', 'jp-gpuhub-job-attempt');
      item.dataset.attempt = String(a.attempt);
      item.dataset.status = a.status;
      const head = el('div', 'jp-gpuhub-job-attempt-head');
      head.append(
        el('strong', '', trans.__('Attempt %1', a.attempt)),
        el('span', `jp-gpuhub-job-state jp-gpuhub-job-${a.status}`, this._ended(a))
      );
      if (a.lease_id !== null || a.gpu_hours) {
        head.appendChild(el('span', 'jp-gpuhub-muted', trans.__('%1 GPU-h', hours(a.gpu_hours))));
      }
      item.appendChild(head);
      const when = a.started_at
        ? a.ended_at
          ? trans.__('%1 to %2', clock(a.started_at), clock(a.ended_at))
          : trans.__('since %1', clock(a.started_at))
        : null;
      const why = [when, a.reason && clockTimes(a.reason)].filter(Boolean).join(' · ');
      if (why) {
        item.appendChild(el('div', 'jp-gpuhub-muted jp-gpuhub-job-attempt-why', why));
      }
      list.appendChild(item);
    }
    return list;
  }

  private _renderDetail(): void {
    const trans = this._trans;
    this._detail.replaceChildren();
    const job = this._jobs.find(j => j.id === this._selected);
    this._log.hidden = !job;
    if (!job) {
      return;
    }
    this._detail.appendChild(el('h3', '', trans.__('Job %1: %2', job.id, job.name)));
    const warning = this._preemption(job);
    if (warning) {
      this._detail.appendChild(warning);
    }
    const rows: [string, string][] = [
      [trans.__('State'), this._state(job)],
      [trans.__('File'), job.path],
      [trans.__('Environment'), job.profile ?? '—'],
      [trans.__('GPUs'), job.shape_text ?? '—'],
      [trans.__('Submitted'), new Date(job.created_at).toLocaleString()]
    ];
    if (job.tier === 'spot') {
      const retries = job.retry?.preempted;
      rows.push([
        trans.__('Capacity'),
        retries === undefined
          ? trans.__('spot (preemptible)')
          : trans._n(
              'spot (preemptible), run again up to %1 time if preempted',
              'spot (preemptible), run again up to %1 times if preempted',
              retries
            )
      ]);
    }
    if ((job.attempt ?? 1) > 1) {
      rows.push([trans.__('Attempt'), String(job.attempt)]);
    }
    if (job.status === 'queued' && job.next_attempt_at) {
      rows.push([trans.__('Next attempt'), trans.__('at %1', clock(job.next_attempt_at))]);
    }
    const secs = elapsed(job);
    if (secs !== null) {
      rows.push([trans.__('Elapsed'), duration(secs)]);
    }
    rows.push([trans.__('GPU-hours'), hours(job.gpu_hours)]);
    if (job.exit_code !== null && job.exit_code !== undefined) {
      rows.push([trans.__('Exit code'), String(job.exit_code)]);
    }
    if (job.reason) {
      rows.push([trans.__('Why'), clockTimes(job.reason)]);
    }
    const params = Object.entries(job.parameters ?? {});
    if (params.length) {
      const text = params.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ');
      rows.push([trans.__('Parameters'), text]);
    }
    const dl = el('dl', 'jp-gpuhub-dl');
    for (const [k, v] of rows) {
      dl.append(el('dt', '', k), el('dd', '', v));
    }
    this._detail.appendChild(dl);
    const attempts = this._attempts(job);
    if (attempts) {
      this._detail.append(el('h4', 'jp-gpuhub-job-attempts-title', trans.__('Attempts')), attempts);
    }

    const actions = el('div', 'jp-gpuhub-job-actions');
    const button = (label: string, cls: string, onClick: () => void): void => {
      const b = el('button', `jp-mod-styled jp-gpuhub-job-${cls}`, label);
      b.addEventListener('click', onClick);
      actions.appendChild(b);
    };
    const live = LIVE_STATUSES.includes(job.status);
    if (live) {
      button(trans.__('Cancel'), 'cancel', () => void this._cancel(job));
    }
    const where = job.local ?? {
      path: job.path,
      output_notebook: job.output_notebook,
      folder: job.folder
    };
    // nothing is written before the job starts
    const output = job.started_at ? where.output_notebook : null;
    if (output) {
      button(trans.__('Open executed notebook'), 'open', () => this._actions.openFile(output));
    }
    const folder = job.started_at ? where.folder : null;
    if (folder) {
      button(trans.__('Open output folder'), 'folder', () => this._actions.openFolder(folder));
    }
    if (job.started_at && job.folder && !where.folder) {
      actions.appendChild(
        el(
          'p',
          'jp-gpuhub-muted',
          trans.__("Its outputs (%1) are outside this server's folder.", job.folder)
        )
      );
    }
    button(trans.__('Run again'), 'rerun', () => {
      void this._actions.runAgain(job).then(created => {
        if (created && 'status' in created) {
          this.select(created.id);
        }
      });
    });
    this._detail.appendChild(actions);
    this._detail.appendChild(this._actionError);
  }

  private async _cancel(job: IJob): Promise<void> {
    const trans = this._trans;
    if (job.status !== 'queued') {
      const answer = await showDialog({
        title: trans.__('Stop job %1 (%2)?', job.id, job.name),
        body: trans.__(
          'It is stopped now (SIGTERM, then killed after a grace period); what it wrote so far stays in its folder.'
        ),
        buttons: [
          Dialog.cancelButton({ label: trans.__('Keep it running') }),
          Dialog.warnButton({ label: trans.__('Stop job') })
        ]
      });
      if (!answer.button.accept) {
        return;
      }
    }
    this._actionError.textContent = trans.__('Cancelling job %1…', job.id);
    try {
      await this._api.cancel(job.id);
      this._actionError.textContent = '';
    } catch (err) {
      this._actionError.textContent = trans.__('Not cancelled: %1', (err as Error).message);
    }
    this._logComplete = false;
    await this.refresh();
  }

  private _renderDefinitions(): void {
    const trans = this._trans;
    this._defs.replaceChildren();
    if (this._definitions.length === 0) {
      return;
    }
    this._defs.appendChild(el('h3', '', trans.__('Recurring')));
    for (const d of this._definitions) {
      const row = el('div', 'jp-gpuhub-job-def');
      const next = d.paused
        ? trans.__('paused')
        : d.next_run_at
          ? trans.__('next %1', new Date(d.next_run_at).toLocaleString())
          : '';
      row.append(
        el('span', 'jp-gpuhub-job-name', `${d.name} · ${d.schedule}`),
        el('span', 'jp-gpuhub-muted', next)
      );
      const pause = el(
        'button',
        'jp-mod-styled jp-gpuhub-job-pause',
        d.paused ? trans.__('Resume') : trans.__('Pause')
      );
      pause.addEventListener('click', () => {
        void this._api.pauseDefinition(d.id, !d.paused).then(() => this.refresh(), this._shown);
      });
      const remove = el('button', 'jp-mod-styled jp-gpuhub-job-delete', trans.__('Delete'));
      remove.addEventListener('click', () => {
        void this._api.deleteDefinition(d.id).then(() => this.refresh(), this._shown);
      });
      row.append(pause, remove);
      this._defs.appendChild(row);
    }
  }

  private _shown = (err: Error): void => {
    this._actionError.textContent = err.message;
    this._defs.appendChild(this._actionError);
  };

  private _actionError = el('p', 'jp-gpuhub-job-error');
  private _definitions: IDefinition[] = [];
  private _detail: HTMLElement;
  private _defs: HTMLElement;
  private _error: string | null = null;
  private _jobs: IJob[] = [];
  private _list: HTMLElement;
  private _log: HTMLPreElement;
  private _logComplete = false;
  private _logOffset = 0;
  private _logText = '';
  private _missing = false;
  private _poll: Poll;
  private _selected: number | null = null;
  private _status: HTMLElement;
  private _ticks = 0;
}

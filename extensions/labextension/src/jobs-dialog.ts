/**
 * The "Run as GPU job" dialog: a form pre-filled from this server (its profile, the GPU
 * shapes the quota allows with what is free now and the queue's length), how many nodes
 * (where the profile allows multi-node jobs, its `max_nodes`), each with the chosen GPU
 * count, what that costs an hour (the service's prices), where the site offers spot
 * capacity a Spot (preemptible) choice at its discount with how many times a preempted
 * job runs again, the notebook's `parameters` as typed fields, a maximum runtime, a name
 * and an optional cron schedule.
 * From a CPU-only server the job goes to the pool on the default GPU profile instead of
 * the server's own. Submitting posts the job from inside the dialog: a refusal is shown in
 * the dialog, next to the field it names, and the dialog stays open, so nothing typed is
 * lost. Rules such as cron syntax are the service's: the dialog does not copy them.
 */
import { Dialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { creditsPerHour, percent, timeSpan } from './format';
import { JobsAPI } from './jobs-api';
import { ApiError } from './request';
import {
  ICreditsSpan,
  IDefinition,
  IJob,
  IJobRequest,
  IParameter,
  IParametersReply,
  IRetryPolicy,
  IRuntimeLimits,
  IShape,
  ISpotPolicy
} from './jobs-types';
import { el } from './dom';

/** The runtime limits when the service did not say (it checks them again). */
const UNKNOWN_LIMITS = { min: 60, default: null, max: null };
/** Retries after a preemption a spot job gets unless told (RetryPolicy's default), and
 * the most the service takes. */
const PREEMPTED_RETRIES = 10;
const MAX_RETRIES = 100;

/** One parameter's editor: its input and how to read it back. */
interface IField {
  param: IParameter;
  input: HTMLInputElement | HTMLTextAreaElement;
  error: HTMLElement;
  read(): unknown; // throws Error with a sentence when the value is not valid
}

/** The form of the dialog: its fields, validation and the submission itself. */
export class JobForm extends Widget {
  constructor(
    private readonly _api: JobsAPI,
    private readonly _info: IParametersReply,
    private readonly _trans: TranslationBundle,
    options: { rerun?: IJob } = {}
  ) {
    super();
    this.addClass('jp-gpuhub-job-form');
    const trans = _trans;
    const rerun = options.rerun;
    const d = _info.defaults;

    this.node.appendChild(
      el(
        'p',
        'jp-gpuhub-job-path',
        _info.kind === 'notebook'
          ? trans.__('Notebook: %1', _info.path)
          : trans.__('Script: %1', _info.path)
      )
    );
    if (d.error) {
      this.node.appendChild(el('p', 'jp-gpuhub-warning', d.error));
    }

    // the environment and the GPU shape; a CPU-only server sends the job to the GPU pool
    const env = el('div', 'jp-gpuhub-job-row');
    env.append(
      el('label', '', trans.__('Environment')),
      el(
        'span',
        'jp-gpuhub-job-profile',
        rerun && rerun.profile !== d.profile
          ? trans.__('Profile %1, as job %2', rerun.profile ?? '—', rerun.id)
          : d.no_gpu
            ? d.profile
              ? trans.__('Profile %1 (this server has no GPU; the job gets one)', d.profile)
              : trans.__('Your default GPU profile (this server has no GPU)')
            : d.profile
              ? trans.__('Same as this server (profile %1)', d.profile)
              : trans.__('Your default profile')
      )
    );
    // a run again keeps the job's environment
    this._profile = rerun ? rerun.profile : d.profile;
    this.node.appendChild(env);

    const gpuRow = el('div', 'jp-gpuhub-job-row');
    const gpuLabel = el('label', '', trans.__('GPUs'));
    this._shape = el('select', 'jp-mod-styled jp-gpuhub-job-shape');
    this._shape.name = 'shape';
    gpuLabel.htmlFor = this._shape.id = 'gpuhub-job-shape';
    const same = el(
      'option',
      '',
      d.no_gpu
        ? d.profile
          ? trans.__('As profile %1', d.profile)
          : trans.__('As your default GPU profile')
        : d.profile
          ? trans.__('As this server')
          : trans.__('As your default profile')
    );
    same.value = '';
    const current = d.shapes.find(s => s.current);
    if (current) {
      same.textContent += ` (${current.text}${current.message ? ' — ' + current.message : ''})`;
    }
    this._shape.appendChild(same);
    d.shapes.forEach((s, i) => {
      // "1 whole GPU (H100-80GB or A100-80GB) — 3 of 8 free": the models behind the shape
      const text = s.models_text ? `${s.text} (${s.models_text})` : s.text;
      const o = el('option', '', s.message ? `${text} — ${s.message}` : text);
      o.value = String(i);
      o.disabled = s.outcome === 'refuse';
      this._shape.appendChild(o);
    });
    if (rerun?.shape) {
      const i = d.shapes.findIndex(s => sameShape(s.shape, rerun.shape));
      if (i >= 0 && !d.shapes[i].current) {
        this._shape.value = String(i);
      }
    }
    gpuRow.append(gpuLabel, this._shape);
    this.node.appendChild(gpuRow);

    // nodes, each with the chosen GPU count: offered where the profile allows several
    // (me/options' max_nodes; a past multi-node job run again keeps its own)
    const rerunNodes = rerun?.shape?.kind === 'gpu' ? (rerun.shape.nodes ?? 1) : 1;
    this._maxNodes = Math.max(d.max_nodes ?? 1, rerunNodes);
    this._nodesRow = el('div', 'jp-gpuhub-job-row jp-gpuhub-job-nodes');
    this._nodes = this._number('gpuhub-job-nodes', String(rerunNodes), 1, this._maxNodes);
    this._nodes.name = 'nodes';
    this._nodesLabel = el('label', '');
    this._nodesLabel.htmlFor = this._nodes.id;
    this._nodesRow.append(this._nodesLabel, this._nodes);
    this.node.appendChild(this._nodesRow);
    this._nodesError = el('p', 'jp-gpuhub-job-field-error');
    this.node.appendChild(this._nodesError);
    // what the job costs an hour: the profile's price per GPU x GPUs x nodes
    this._priceRow = el('div', 'jp-gpuhub-job-row jp-gpuhub-job-price-row');
    this._price = el('span', 'jp-gpuhub-job-price');
    this._priceRow.append(el('label', '', trans.__('Price')), this._price);
    this.node.appendChild(this._priceRow);
    this._shapeNote = el('p', 'jp-gpuhub-muted jp-gpuhub-job-queue');
    this.node.appendChild(this._shapeNote);

    // spot: idle GPUs at the site's discount, taken back with a notice (me/options' spot);
    // not offered where the site has none
    this._spotPolicy = d.spot?.enabled ? d.spot : null;
    const spotRow = el('div', 'jp-gpuhub-job-row jp-gpuhub-job-spot-row');
    this._spot = el('input', 'jp-gpuhub-job-spot');
    this._spot.type = 'checkbox';
    this._spot.id = 'gpuhub-job-spot';
    this._spot.name = 'tier';
    this._spot.checked = this._spotPolicy !== null && rerun?.tier === 'spot';
    const spotLabel = el('label', '', trans.__('Spot (preemptible)'));
    spotLabel.htmlFor = this._spot.id;
    spotRow.append(this._spot, spotLabel);
    const spotNote = el('p', 'jp-gpuhub-muted jp-gpuhub-job-spot-note');
    if (this._spotPolicy) {
      spotNote.textContent = spotText(this._spotPolicy, trans);
      spotRow.appendChild(spotNote);
    }
    this._retryRow = el('div', 'jp-gpuhub-job-row jp-gpuhub-job-retry-row');
    // a run again keeps the job's own count
    this._retryPolicy = rerun?.retry ?? null;
    this._retries = this._number(
      'gpuhub-job-retries',
      String(this._retryPolicy?.preempted ?? PREEMPTED_RETRIES),
      0,
      MAX_RETRIES
    );
    this._retries.name = 'retry.preempted';
    const retriesLabel = el('label', '', trans.__('Retries if preempted'));
    retriesLabel.htmlFor = this._retries.id;
    this._retryRow.append(
      retriesLabel,
      this._retries,
      el(
        'span',
        'jp-gpuhub-muted jp-gpuhub-job-retry-help',
        trans.__('times it runs again, from its checkpoints (0–%1)', MAX_RETRIES)
      )
    );
    this._retriesError = el('p', 'jp-gpuhub-job-field-error');
    spotRow.hidden = this._spotPolicy === null;
    this.node.append(spotRow, this._retryRow, this._retriesError);
    this._showShape();

    // parameters
    const params = el('fieldset', 'jp-gpuhub-job-params');
    params.appendChild(el('legend', '', trans.__('Parameters')));
    if (_info.kind === 'script') {
      params.appendChild(
        el('p', 'jp-gpuhub-muted', trans.__('A script runs as it is; it has no parameters cell.'))
      );
    } else if (!_info.has_parameters_cell) {
      params.appendChild(
        el(
          'p',
          'jp-gpuhub-muted',
          trans.__('This notebook has no cell tagged "parameters": it runs with its own values.')
        )
      );
    }
    const given = rerun?.parameters ?? {};
    for (const p of _info.parameters) {
      const value = Object.prototype.hasOwnProperty.call(given, p.name) ? given[p.name] : p.value;
      const field = this._field(p, value);
      this._fields.push(field);
      const row = el('div', 'jp-gpuhub-job-param');
      const label = el('label', '', p.name);
      label.htmlFor = field.input.id;
      label.title = trans.__('%1 (%2)', p.name, p.type);
      row.append(label, field.input);
      if (p.help) {
        row.appendChild(el('span', 'jp-gpuhub-muted jp-gpuhub-job-help', p.help));
      }
      row.appendChild(field.error);
      params.appendChild(row);
    }
    if (_info.unsupported.length) {
      params.appendChild(
        el(
          'p',
          'jp-gpuhub-muted',
          trans.__('Set by expressions, kept as in the notebook: %1', _info.unsupported.join(', '))
        )
      );
    }
    this.node.appendChild(params);

    // runtime, name, schedule: the limits and the default are the service's (me/options)
    this._limits = d.runtime ?? UNKNOWN_LIMITS;
    const runtime = rerun?.max_runtime_s ?? this._limits.default;
    const maxHours = this._limits.max === null ? 168 : Math.floor(this._limits.max / 3600);
    const rt = el('div', 'jp-gpuhub-job-row');
    rt.appendChild(el('label', '', trans.__('Maximum runtime')));
    this._hours = this._number(
      'gpuhub-job-hours',
      runtime === null ? '' : String(Math.floor(runtime / 3600)),
      0,
      maxHours
    );
    this._minutes = this._number(
      'gpuhub-job-minutes',
      runtime === null ? '' : String(Math.floor((runtime % 3600) / 60)),
      0,
      59
    );
    rt.append(
      this._hours,
      el('span', '', trans.__('h')),
      this._minutes,
      el('span', '', trans.__('min'))
    );
    this.node.appendChild(rt);
    this._runtimeError = el('p', 'jp-gpuhub-job-field-error');
    this.node.appendChild(this._runtimeError);

    const nameRow = el('div', 'jp-gpuhub-job-row');
    this._name = el('input', 'jp-mod-styled jp-gpuhub-job-name');
    this._name.id = 'gpuhub-job-name';
    this._name.name = 'name';
    this._name.maxLength = 100;
    this._name.value = rerun?.name ?? _info.name;
    const nameLabel = el('label', '', trans.__('Name'));
    nameLabel.htmlFor = this._name.id;
    nameRow.append(nameLabel, this._name);
    this.node.appendChild(nameRow);

    const sched = el('div', 'jp-gpuhub-job-row');
    this._recurring = el('input', 'jp-gpuhub-job-recurring');
    this._recurring.type = 'checkbox';
    this._recurring.id = 'gpuhub-job-recurring';
    const recurringLabel = el('label', '', trans.__('Repeat (cron, UTC)'));
    recurringLabel.htmlFor = this._recurring.id;
    this._schedule = el('input', 'jp-mod-styled jp-gpuhub-job-schedule');
    this._schedule.name = 'schedule';
    this._schedule.placeholder = trans.__('0 2 * * *  (every day at 02:00 UTC)');
    this._schedule.disabled = true;
    this._recurring.addEventListener('change', () => {
      this._schedule.disabled = !this._recurring.checked;
      this.validate();
      this.validated();
    });
    sched.append(this._recurring, recurringLabel, this._schedule);
    // this site takes no recurring schedules (me/options): the choice is not offered
    sched.hidden = !d.schedules;
    this.node.appendChild(sched);
    this._scheduleError = el('p', 'jp-gpuhub-job-field-error');
    this.node.appendChild(this._scheduleError);

    this._error = el('p', 'jp-gpuhub-job-error');
    this._error.setAttribute('role', 'alert');
    this.node.appendChild(this._error);
    this.node.addEventListener('input', () => {
      this._showShape();
      this.validate();
      this.validated();
    });
    this.node.addEventListener('change', () => this._showShape());
  }

  /** What the submission created (the job, or the recurring definition), once done. */
  get result(): IJob | IDefinition | null {
    return this._result;
  }

  /** Called after each check of the fields (the dialog enables its Submit button). */
  validated: () => void = () => undefined;

  /** Whether a submission is under way. */
  get busy(): boolean {
    return this._busy;
  }

  /** The dialog's value: what was submitted. */
  getValue(): IJob | IDefinition | null {
    return this._result;
  }

  /** Check every field, mark the wrong ones; the request when all are valid, else null. */
  validate(): IJobRequest | null {
    const trans = this._trans;
    let ok = true;
    const parameters: Record<string, unknown> = {};
    for (const f of this._fields) {
      try {
        parameters[f.param.name] = f.read();
        this._mark(f.input, f.error, null);
      } catch (err) {
        ok = false;
        this._mark(f.input, f.error, (err as Error).message);
      }
    }
    // both fields empty: the service's default maximum runtime
    const unset = this._hours.value.trim() === '' && this._minutes.value.trim() === '';
    const h = Number(this._hours.value || '0');
    const m = Number(this._minutes.value || '0');
    const runtime = Math.round(h * 3600 + m * 60);
    const { min, max } = this._limits;
    let runtimeError: string | null = null;
    if (!Number.isInteger(h) || !Number.isInteger(m) || h < 0 || m < 0 || m > 59) {
      runtimeError = trans.__('Maximum runtime: whole hours and minutes (0-59).');
    } else if (!unset && (runtime < min || (max !== null && runtime > max))) {
      runtimeError =
        max === null
          ? trans.__('Maximum runtime: at least %1.', duration(min, trans))
          : trans.__(
              'Maximum runtime: between %1 and %2 here.',
              duration(min, trans),
              duration(max, trans)
            );
    }
    this._mark(this._hours, this._runtimeError, runtimeError);
    this._minutes.classList.toggle('jp-mod-error', runtimeError !== null);
    ok = ok && runtimeError === null;
    // the service checks the schedule (cron fields, @daily, CRON_TZ=...): its refusal is
    // shown under the field; here only an empty one is caught
    let scheduleError: string | null = null;
    const schedule = this._schedule.value.trim();
    if (this._recurring.checked && schedule === '') {
      scheduleError = trans.__(
        'Repeat needs a schedule: cron fields such as "0 2 * * mon-fri", or "@daily".'
      );
    }
    this._mark(this._schedule, this._scheduleError, scheduleError);
    ok = ok && scheduleError === null;
    // nodes: only where offered (whole GPUs, a profile that allows several)
    const nodes = this._nodesOffered() ? Number(this._nodes.value.trim() || 'NaN') : 1;
    let nodesError: string | null = null;
    if (!Number.isInteger(nodes) || nodes < 1 || nodes > this._maxNodes) {
      nodesError = trans.__('Nodes: a whole number from 1 to %1.', this._maxNodes);
    }
    this._mark(this._nodes, this._nodesError, nodesError);
    ok = ok && nodesError === null;
    // retries after a preemption: asked for a spot job only
    const spot = this._spotChecked();
    const retriesText = this._retries.value.trim();
    const retries = Number(retriesText);
    let retriesError: string | null = null;
    if (
      spot &&
      (retriesText === '' || !Number.isInteger(retries) || retries < 0 || retries > MAX_RETRIES)
    ) {
      retriesError = trans.__('Retries if preempted: a whole number from 0 to %1.', MAX_RETRIES);
    }
    this._mark(this._retries, this._retriesError, retriesError);
    ok = ok && retriesError === null;
    const name = this._name.value.trim();
    if (!ok) {
      return null;
    }
    const body: IJobRequest = {
      path: this._info.path,
      profile: this._profile,
      parameters,
      name: name || null
    };
    if (!unset) {
      body.max_runtime_s = runtime;
    }
    // "as this server": the server's own shape when known (a profile may offer several
    // GPU counts), else the profile's
    const shape = this._selectedShape() ?? this._info.defaults.current_shape;
    if (shape) {
      body.shape = shape;
    }
    // several nodes: the whole-GPU shape carries them (the service takes a shape or
    // `nodes`, not both); without a shape `nodes` multiplies the profile's own count
    if (nodes > 1) {
      if (shape?.kind === 'gpu') {
        body.shape = { ...shape, nodes };
      } else {
        body.nodes = nodes;
      }
    }
    if (this._recurring.checked) {
      body.schedule = schedule;
    }
    // a run again keeps the job's retry policy; a spot job says its retries if preempted
    // (the other classes keep theirs, or the service's defaults)
    if (spot) {
      body.tier = 'spot';
      body.retry = { ...(this._retryPolicy ?? {}), preempted: retries };
    } else if (this._retryPolicy) {
      body.retry = { ...this._retryPolicy };
    }
    return body;
  }

  /** Validate and post the job; false (with the reason shown) when it did not go. */
  async submit(): Promise<boolean> {
    const body = this.validate();
    if (!body) {
      this._error.textContent = this._trans.__('Correct the fields marked in red first.');
      return false;
    }
    this._busy = true;
    this.node.classList.add('jp-mod-busy');
    this._error.textContent = this._trans.__('Submitting…');
    try {
      this._result = await this._api.submit(body, this._key);
      this._error.textContent = '';
      return true;
    } catch (err) {
      const e = err as ApiError;
      const message = this._inDialogWords(e);
      const field = this._fields.find(f => e.field && e.field.endsWith(f.param.name));
      let marked = true;
      if (field) {
        this._mark(field.input, field.error, message);
        this.validated(); // Submit waits until the field is changed
      } else if (e.field === 'max_runtime_s') {
        this._mark(this._hours, this._runtimeError, message);
        this._minutes.classList.add('jp-mod-error');
      } else if (e.field === 'schedule') {
        this._mark(this._schedule, this._scheduleError, message);
      } else if ((e.field === 'nodes' || e.field === 'shape.nodes') && this._nodesOffered()) {
        this._mark(this._nodes, this._nodesError, message);
      } else if (e.field?.startsWith('retry') && this._spotChecked()) {
        this._mark(this._retries, this._retriesError, message);
      } else {
        marked = false;
      }
      this._error.textContent = e.missing
        ? this._trans.__(
            'The gpuhub server extension (jupyter_gpuhub) is not installed or not enabled on this server: jobs cannot be submitted from here.'
          )
        : marked
          ? this._trans.__('Not submitted: see the field marked above.')
          : this._trans.__('Not submitted: %1', message);
      return false;
    } finally {
      this._busy = false;
      this.node.classList.remove('jp-mod-busy');
    }
  }

  /**
   * A refusal in the dialog's words: the field it names by the label the person sees
   * ("Maximum runtime: at most 24 h here", not "max_runtime_s: at most 86400 seconds
   * here"), a parameter by its own name, pydantic's "Input should be" as "must be".
   */
  private _inDialogWords(e: ApiError): string {
    const trans = this._trans;
    const labels: Record<string, string> = {
      max_runtime_s: trans.__('Maximum runtime'),
      name: trans.__('Name'),
      schedule: trans.__('Repeat (cron, UTC)'),
      shape: trans.__('GPUs'),
      gpus: trans.__('GPUs'),
      nodes: trans.__('Nodes'),
      'shape.nodes': trans.__('Nodes'),
      profile: trans.__('Environment'),
      parameters: trans.__('Parameters'),
      tier: trans.__('Spot (preemptible)'),
      'retry.preempted': trans.__('Retries if preempted'),
      retry: trans.__('Retries')
    };
    let text = e.message;
    const f = e.field ?? '';
    const param = f.startsWith('parameters.') ? f.slice('parameters.'.length) : null;
    const label = param ?? labels[f] ?? labels[f.split('.')[0]];
    if (label) {
      text = text.replace(
        new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(:\\s*|\\s+)`),
        (_, sep: string) => (sep.startsWith(':') ? `${label}: ` : `'${label}' `)
      );
    }
    // the runtime named mid-sentence ("the maximum runtime max_runtime_s is above ...")
    text = text.replace(/\s*\bmax_runtime_s\b/g, '');
    text = text
      .replace(/Input should be greater than or equal to /g, 'must be ≥ ')
      .replace(/Input should be less than or equal to /g, 'must be ≤ ')
      .replace(/Input should be a valid integer[^;]*/g, 'must be a whole number')
      .replace(/Input should be /g, 'must be ');
    if (f === 'max_runtime_s') {
      // seconds, as the API counts them, in the hours and minutes of the form
      text = text.replace(/(\d+)( seconds)?/g, (whole, n: string) => {
        const s = Number(n);
        if (s < 60) {
          return whole;
        }
        const h = Math.floor(s / 3600);
        const m = Math.round((s % 3600) / 60);
        return h && m
          ? trans.__('%1 h %2 min', h, m)
          : h
            ? trans.__('%1 h', h)
            : trans.__('%1 min', m);
      });
    }
    return text;
  }

  private _selectedShape(): IShape | null {
    const v = this._shape.value;
    return v === '' ? null : this._info.defaults.shapes[Number(v)].shape;
  }

  /** The chosen shape: the selected one, or "as this server" (null: the profile's, not known). */
  private _chosenShape(): IShape | null {
    return this._selectedShape() ?? this._info.defaults.current_shape;
  }

  /** Whether the Nodes choice is offered: a profile that allows several, whole GPUs. */
  private _nodesOffered(): boolean {
    const shape = this._chosenShape();
    return this._maxNodes > 1 && (shape === null || shape.kind === 'gpu');
  }

  /**
   * What the chosen GPUs cost an hour, low and high over the models that may serve them
   * (the service's prices, me/options): whole GPUs at the profile's price per GPU x the
   * GPU count x the nodes; a MIG slice or shared seat at its shape's price; the profile's
   * own GPUs ("as this server", shape not known) at its price x the nodes. Null where the
   * service does not say (an older one) or the nodes are not a number yet.
   */
  private _credits(): ICreditsSpan | null {
    const d = this._info.defaults;
    const v = this._shape.value;
    const choice = v === '' ? d.shapes.find(s => s.current) : d.shapes[Number(v)];
    const shape = this._chosenShape();
    const nodes = this._nodesOffered() ? Number(this._nodes.value) : 1;
    if (!Number.isInteger(nodes) || nodes < 1) {
      return null;
    }
    const times = (span: ICreditsSpan | null | undefined, n: number) =>
      span ? { min: span.min * n, max: span.max * n } : null;
    // a past job run again on another profile: that profile's price is not known here
    const ours = this._profile === d.profile;
    if (shape === null) {
      return ours ? times(d.credits_per_hour, nodes) : null;
    }
    if (shape.kind === 'gpu') {
      const perGpu = ours ? d.credits_per_gpu_hour : null;
      return perGpu
        ? times(perGpu, (shape.count ?? 1) * nodes)
        : times(choice?.credits_per_hour, nodes);
    }
    return times(choice?.credits_per_hour ?? (ours ? d.credits_per_hour : null), 1);
  }

  /** What is free of the chosen shape now, and how long the queue is; the Nodes choice
   * shown where offered, labelled with the GPUs each node gets; the price of the choice. */
  private _showShape(): void {
    const trans = this._trans;
    const d = this._info.defaults;
    const v = this._shape.value;
    const choice = v === '' ? d.shapes.find(s => s.current) : d.shapes[Number(v)];
    const shape = this._chosenShape();
    this._nodesRow.hidden = !this._nodesOffered();
    this._nodesLabel.textContent =
      shape?.kind === 'gpu'
        ? trans._n('Nodes (each with %1 GPU)', 'Nodes (each with %1 GPUs)', shape.count ?? 1)
        : trans.__("Nodes (each with the profile's GPUs)");
    const nodes = this._nodesRow.hidden ? 1 : Number(this._nodes.value);
    const parts: string[] = [];
    if (Number.isInteger(nodes) && nodes > 1) {
      // the preview is of one node's GPUs: say how the nodes are granted instead
      parts.push(trans.__('All %1 nodes are granted at once, or the job waits for them.', nodes));
    } else if (choice?.message) {
      parts.push(choice.message);
    }
    parts.push(
      d.queue_length === null
        ? trans.__('Queue length not known.')
        : d.queue_length === 1
          ? trans.__('1 request waits in the queue now.')
          : trans.__('%1 requests wait in the queue now.', d.queue_length)
    );
    this._shapeNote.textContent = parts.join(' · ');
    const credits = this._credits();
    const spot = this._spotChecked();
    let price = creditsPerHour(credits, trans);
    if (spot && credits && price !== null) {
      // the spot price: the guaranteed one times the discount
      const discount = this._spotPolicy?.discount ?? 1;
      const cheaper = { min: credits.min * discount, max: credits.max * discount };
      price = trans.__('%1 spot (guaranteed: %2)', creditsPerHour(cheaper, trans) ?? '', price);
    }
    this._price.textContent = price ?? '';
    this._priceRow.hidden = price === null;
    this._priceRow.classList.toggle('jp-mod-spot', spot);
    this._retryRow.hidden = !spot;
  }

  /** Whether the job asks for spot capacity (offered here, and ticked). */
  private _spotChecked(): boolean {
    return this._spotPolicy !== null && this._spot.checked;
  }

  private _mark(input: HTMLElement, error: HTMLElement, message: string | null): void {
    input.classList.toggle('jp-mod-error', message !== null);
    error.textContent = message ?? '';
  }

  private _number(id: string, value: string, min: number, max: number): HTMLInputElement {
    const input = el('input', 'jp-mod-styled jp-gpuhub-job-number');
    input.type = 'number';
    input.id = id;
    input.min = String(min);
    input.max = String(max);
    input.step = '1';
    input.value = value;
    return input;
  }

  private _field(p: IParameter, value: unknown): IField {
    const trans = this._trans;
    const error = el('span', 'jp-gpuhub-job-field-error');
    const id = `gpuhub-param-${p.name}`;
    let input: HTMLInputElement | HTMLTextAreaElement;
    let read: () => unknown;
    switch (p.type) {
      case 'bool': {
        const box = el('input', 'jp-gpuhub-job-bool');
        box.type = 'checkbox';
        box.checked = value === true;
        input = box;
        read = () => box.checked;
        break;
      }
      case 'int':
      case 'float': {
        const num = el('input', 'jp-mod-styled jp-gpuhub-job-number');
        num.type = 'number';
        num.step = p.type === 'int' ? '1' : 'any';
        num.value = typeof value === 'number' ? String(value) : '';
        input = num;
        read = () => {
          const text = num.value.trim();
          const v = Number(text);
          if (text === '' || !Number.isFinite(v)) {
            throw new Error(trans.__('%1 must be a number.', p.name));
          }
          if (p.type === 'int' && !Number.isInteger(v)) {
            throw new Error(trans.__('%1 must be a whole number.', p.name));
          }
          return v;
        };
        break;
      }
      case 'str': {
        const text = el('input', 'jp-mod-styled jp-gpuhub-job-text');
        text.type = 'text';
        text.value = typeof value === 'string' ? value : JSON.stringify(value);
        input = text;
        read = () => text.value;
        break;
      }
      default: {
        // list, dict, None: JSON text
        const area = el('textarea', 'jp-mod-styled jp-gpuhub-job-json');
        area.rows = p.type === 'None' ? 1 : 2;
        area.value = value === null || value === undefined ? 'null' : JSON.stringify(value);
        input = area;
        read = () => {
          let v: unknown;
          try {
            v = JSON.parse(area.value);
          } catch {
            throw new Error(trans.__('%1 must be JSON (%2).', p.name, p.type));
          }
          if (p.type === 'list' && !Array.isArray(v)) {
            throw new Error(trans.__('%1 must be a JSON list, e.g. [1, 2].', p.name));
          }
          if (p.type === 'dict' && (v === null || typeof v !== 'object' || Array.isArray(v))) {
            throw new Error(trans.__('%1 must be a JSON object, e.g. {"a": 1}.', p.name));
          }
          return v;
        };
      }
    }
    input.id = id;
    input.name = p.name;
    input.dataset.type = p.type;
    return { param: p, input, error, read };
  }

  /** One Idempotency-Key per dialog: submitting again after a lost answer makes no twin. */
  private _key = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  private _busy = false;
  private _profile: string | null;
  private _error: HTMLElement;
  private _fields: IField[] = [];
  private _hours: HTMLInputElement;
  private _maxNodes: number;
  private _minutes: HTMLInputElement;
  private _name: HTMLInputElement;
  private _nodes: HTMLInputElement;
  private _nodesError: HTMLElement;
  private _nodesLabel: HTMLLabelElement;
  private _nodesRow: HTMLElement;
  private _price: HTMLElement;
  private _priceRow: HTMLElement;
  private _recurring: HTMLInputElement;
  private _result: IJob | IDefinition | null = null;
  private _retries: HTMLInputElement;
  private _retriesError: HTMLElement;
  private _retryPolicy: IRetryPolicy | null;
  private _retryRow: HTMLElement;
  private _runtimeError: HTMLElement;
  private _limits: IRuntimeLimits;
  private _schedule: HTMLInputElement;
  private _scheduleError: HTMLElement;
  private _shape: HTMLSelectElement;
  private _shapeNote: HTMLElement;
  private _spot: HTMLInputElement;
  private _spotPolicy: ISpotPolicy | null;
}

/** What spot capacity is, from the site's numbers: "30 % of the price; may be stopped with
 * 2 min notice and resumed from its checkpoints (gpuhub.checkpoint)". */
export function spotText(spot: ISpotPolicy, trans: TranslationBundle): string {
  const notice = timeSpan(spot.grace_s, trans);
  const pct = percent(spot.discount);
  return spot.min_runtime_s > 0
    ? trans.__(
        '%1 % of the price; may be stopped after its first %2 with %3 notice and resumed from its checkpoints (gpuhub.checkpoint)',
        pct,
        timeSpan(spot.min_runtime_s, trans),
        notice
      )
    : trans.__(
        '%1 % of the price; may be stopped with %2 notice and resumed from its checkpoints (gpuhub.checkpoint)',
        pct,
        notice
      );
}

/** A runtime limit for people: "1 min", "24 h", "7 d". */
function duration(seconds: number, trans: TranslationBundle): string {
  if (seconds % 86400 === 0) {
    return trans.__('%1 d', seconds / 86400);
  }
  if (seconds % 3600 === 0) {
    return trans.__('%1 h', seconds / 3600);
  }
  return trans.__('%1 min', Math.round(seconds / 60));
}

/** Whether two shapes ask for the same thing. */
function sameShape(a: IShape | null | undefined, b: IShape | null | undefined): boolean {
  if (!a || !b || a.kind !== b.kind) {
    return false;
  }
  if (a.kind === 'gpu' && b.kind === 'gpu') {
    return (a.count ?? 1) === (b.count ?? 1);
  }
  if (a.kind === 'mig' && b.kind === 'mig') {
    return a.profile === b.profile;
  }
  return true; // two shared seats
}

/** A dialog whose accept button submits from inside and closes only once it went. */
class JobDialog extends Dialog<IJob | IDefinition | null> {
  constructor(
    private readonly _form: JobForm,
    trans: TranslationBundle,
    title: string
  ) {
    super({
      title,
      body: _form,
      buttons: [
        Dialog.cancelButton({ label: trans.__('Cancel') }),
        Dialog.okButton({ label: trans.__('Submit') })
      ],
      focusNodeSelector: 'select, input'
    });
    this.addClass('jp-gpuhub-job-dialog');
    _form.validated = () => this._checkValidation();
  }

  /** Submit on the accept button; close only when the submission went. */
  resolve(index?: number): void {
    const accept = 1;
    const i = index ?? accept;
    if (i !== accept || this._form.result) {
      super.resolve(i);
      return;
    }
    if (this._form.busy) {
      return;
    }
    void this._form.submit().then(ok => {
      if (ok) {
        super.resolve(i);
      }
    });
  }
}

/**
 * Ask for the job's settings and submit it: the job (or recurring definition) created,
 * or null when the dialog was cancelled. `rerun`: pre-fill from a past job.
 */
export async function runAsJobDialog(
  api: JobsAPI,
  path: string,
  trans: TranslationBundle,
  rerun?: IJob
): Promise<IJob | IDefinition | null> {
  let info: IParametersReply;
  try {
    info = await api.parameters(path);
  } catch (err) {
    const e = err as ApiError;
    const body = e.missing
      ? trans.__(
          'The gpuhub server extension (jupyter_gpuhub) is not installed or not enabled on this server, so notebooks cannot run as GPU jobs from here.'
        )
      : e.message;
    await showErrorBody(trans.__('Cannot run %1 as a GPU job', path), body, trans);
    return null;
  }
  const form = new JobForm(api, info, trans, { rerun });
  const dialog = new JobDialog(form, trans, trans.__('Run as GPU job'));
  const result = await dialog.launch();
  return result.button.accept ? form.result : null;
}

/** A dialog with one sentence and an OK button. */
export async function showErrorBody(
  title: string,
  message: string,
  trans: TranslationBundle
): Promise<void> {
  const body = el('div', 'jp-gpuhub-job-error-body');
  body.appendChild(el('p', '', message));
  await new Dialog({
    title,
    body: new Widget({ node: body }),
    buttons: [Dialog.okButton({ label: trans.__('OK') })]
  }).launch();
}

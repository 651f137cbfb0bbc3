/**
 * Quotas (admins): every user's and group's quota with what is in use and left (GPU units,
 * GPU-hours, credits, the spot allowance where one is set or used, and a group's cohort
 * with what it borrows and lends now) and when it resets (`GET /quotas`); a form that sets
 * one (`PUT /quotas/{users|groups}/{name}`, every QuotaSpec field; a group the hub lacks is
 * refused unless "create" is ticked) and an unset action (`DELETE`). The PUT replaces the
 * whole quota, so a save starts from the quota as the service has it now
 * ({@link currentQuota}) and changes only the fields the form shows: a field this console
 * does not know stays. A refused value shows the service's sentence next to the form, in
 * the form's words (forms.ts, inFormWords), and changes nothing.
 */
import { ApiError } from '../api';
import { Ctx, Page } from '../context';
import {
  bar,
  button,
  clearError,
  empty,
  fmtAmount,
  fmtNumber,
  fmtUnits,
  h,
  section,
  showError,
  table
} from '../dom';
import { clearFoot, field, FieldError, formFoot, numberOrNull, onSubmit } from '../forms';
import { QuotaSpec, QuotaStatus } from '../types';

interface QuotaList {
  quotas: QuotaStatus[];
  default_user_quota: QuotaSpec | null;
}

/** "2 GPUs", or "no limit". */
function limit(units: number | null | undefined): string {
  return units === null || units === undefined ? 'no limit' : fmtUnits(units);
}

/** The concurrent-units cell: a bar of in use (+ queued) of the limit. */
export function unitsCell(s: QuotaStatus): Node {
  const used = s.units_active + s.units_queued;
  // a group in a cohort may hold more than its own share: what it borrows, said
  const borrowed = s.borrowed_units ? ` (${fmtNumber(s.borrowed_units)} borrowed)` : '';
  const text = `${fmtNumber(s.units_active)} in use${s.units_queued ? ` + ${fmtNumber(s.units_queued)} queued` : ''} of ${limit(s.quota?.max_units)}${borrowed}`;
  const max = s.quota?.max_units;
  return max === null || max === undefined
    ? document.createTextNode(text)
    : bar(max ? used / max : used ? 1 : 0, text);
}

/** The GPU-hours cell: used of the budget, what is left and when it resets. */
export function hoursCell(s: QuotaStatus): Node {
  if (s.quota?.gpu_hours === null || s.quota?.gpu_hours === undefined) {
    return document.createTextNode('no limit');
  }
  const used = s.gpu_hours_used ?? 0;
  const budget = s.quota.gpu_hours;
  return h(
    'div',
    null,
    bar(
      budget ? used / budget : 1,
      `${fmtAmount(used)} of ${fmtAmount(budget)} h used, ${fmtAmount(s.gpu_hours_left ?? 0)} h left`
    ),
    h('div', { class: 'gh-muted gh-small' }, s.period ?? '')
  );
}

/** The credits cell: used of the budget and what is left (and when it resets, unless the
 * GPU-hours cell beside it says so already). */
export function creditsCell(s: QuotaStatus): Node {
  if (s.quota?.credits === null || s.quota?.credits === undefined) {
    return document.createTextNode('no limit');
  }
  const used = s.credits_used ?? 0;
  const budget = s.quota.credits;
  const hours = s.quota.gpu_hours !== null && s.quota.gpu_hours !== undefined;
  return h(
    'div',
    null,
    bar(
      budget ? used / budget : 1,
      `${fmtAmount(used)} of ${fmtAmount(budget)} credits used, ${fmtAmount(s.credits_left ?? 0)} left`
    ),
    hours ? null : h('div', { class: 'gh-muted gh-small' }, s.period ?? '')
  );
}

/** Whether a quota has a spot allowance, or spot leases held through it (so that the spot
 * cell says something). */
export function hasSpot(s: QuotaStatus): boolean {
  const q = s.quota;
  return (
    (s.spot_units_active ?? 0) > 0 ||
    (q?.spot_max_units ?? null) !== null ||
    (q?.spot_gpu_hours ?? null) !== null
  );
}

/** Spot GPU units in use of the spot allowance: "1 of 4 GPUs at once", or "1 GPU at once,
 * no limit". */
export function spotUnitsText(s: QuotaStatus): string {
  const active = s.spot_units_active ?? 0;
  const max = s.quota?.spot_max_units ?? null;
  return max === null
    ? `${fmtUnits(active)} at once, no limit`
    : `${fmtNumber(active)} of ${fmtUnits(max)} at once`;
}

/** Spot GPU-hours used of their budget this period: "3 of 100 GPU-hours, 97 left"; null
 * without a budget. */
export function spotHoursText(s: QuotaStatus): string | null {
  const budget = s.quota?.spot_gpu_hours ?? null;
  if (budget === null) {
    return null;
  }
  const used = s.spot_gpu_hours_used ?? 0;
  return `${fmtAmount(used)} of ${fmtAmount(budget)} GPU-hours, ${fmtAmount(s.spot_gpu_hours_left ?? Math.max(budget - used, 0))} left`;
}

/** The spot (preemptible) cell: units at once and GPU-hours of the spot allowance, each
 * line marked when it is used up; "—" for a quota without spot. */
export function spotCell(s: QuotaStatus): Node {
  if (!hasSpot(s)) {
    return document.createTextNode('—');
  }
  const q = s.quota;
  const max = q?.spot_max_units ?? null;
  const budget = q?.spot_gpu_hours ?? null;
  const unitsFull = max !== null && (s.spot_units_active ?? 0) >= max;
  const hoursFull = budget !== null && (s.spot_gpu_hours_left ?? budget) <= 0;
  const hours = spotHoursText(s);
  return h(
    'div',
    { class: 'gh-spot-use' },
    h('div', { class: unitsFull ? 'gh-warn' : null }, spotUnitsText(s)),
    hours ? h('div', { class: hoursFull ? 'gh-warn' : null }, hours) : null
  );
}

/** The spot allowance of a quota spec in a few words ("spot: 4 GPUs at once, 100 GPU-hours
 * per week"); null without one. */
export function spotSpecText(q: QuotaSpec | null): string | null {
  const max = q?.spot_max_units ?? null;
  const budget = q?.spot_gpu_hours ?? null;
  if (!q || (max === null && budget === null)) {
    return null;
  }
  return (
    'spot: ' +
    [
      max === null ? null : `${fmtUnits(max)} at once`,
      budget === null ? null : `${fmtAmount(budget)} GPU-hours per ${q.period}`
    ]
      .filter(Boolean)
      .join(', ')
  );
}

/** Whether a group quota lends and borrows in a cohort. */
export function inCohort(s: QuotaStatus): boolean {
  return s.kind === 'group' && !!s.quota?.cohort;
}

/** The cohort cell of a group: its cohort with what it borrows and lends now (marked when
 * it borrows), and its limits; "—" outside a cohort. */
export function cohortCell(s: QuotaStatus): Node {
  if (!inCohort(s)) {
    return document.createTextNode('—');
  }
  const q = s.quota;
  const borrowed = s.borrowed_units ?? 0;
  const lent = s.lent_units ?? 0;
  const limits = [
    q?.borrow_limit === null || q?.borrow_limit === undefined
      ? null
      : `borrows at most ${fmtUnits(q.borrow_limit)}`,
    q?.lend_limit === null || q?.lend_limit === undefined
      ? null
      : `lends at most ${fmtUnits(q.lend_limit)}`
  ].filter(Boolean);
  return h(
    'div',
    { class: 'gh-lending', 'data-cohort-of': s.name },
    h('strong', { class: 'gh-lending-cohort' }, q?.cohort ?? ''),
    h(
      'div',
      { class: 'gh-lending-now' },
      h('span', { class: borrowed > 0 ? 'gh-warn' : null }, `borrows ${fmtUnits(borrowed)}`),
      `, lends ${fmtUnits(lent)} now`
    ),
    limits.length ? h('div', { class: 'gh-muted gh-small' }, limits.join(', ')) : null
  );
}

/** The other limits in a few words. */
export function rulesText(q: QuotaSpec | null, kind: 'user' | 'group'): string {
  if (!q) {
    return 'unlimited';
  }
  const parts: string[] = [];
  if (kind === 'group' && q.per_user_max_units !== null) {
    parts.push(`${fmtUnits(q.per_user_max_units)} per member`);
  }
  if (kind === 'group' && q.fair_share !== null && q.fair_share !== undefined) {
    parts.push(`fair-share weight ${fmtAmount(q.fair_share)}`);
  }
  if (q.allowed_shapes) {
    parts.push(`shapes ${q.allowed_shapes.join(', ') || '(none)'}`);
  }
  if (q.allowed_profiles) {
    parts.push(`profiles ${q.allowed_profiles.join(', ') || '(none)'}`);
  }
  if (q.priority) {
    parts.push(`priority ${q.priority}`);
  }
  if (q.period === 'term') {
    parts.push(`term ${q.term_start} – ${q.term_end}`);
  }
  return parts.join('; ') || '—';
}

/** The quota a user or group has of its own now (null: none; a user on the default quota
 * has none of their own), for a save to start from: PUT replaces the whole quota, and a
 * form changes only the fields it shows. */
export async function currentQuota(
  ctx: Ctx,
  kind: 'user' | 'group',
  name: string
): Promise<Partial<QuotaSpec> | null> {
  try {
    const s = await ctx.api.get<QuotaStatus>(`/quotas/${kind}s/${encodeURIComponent(name)}`);
    return s.default ? null : s.quota;
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      return null; // a group without a quota (or the hub lacks it: the PUT says so)
    }
    throw e;
  }
}

/** A group's cohort name from its field: null when empty (in no cohort); the service
 * judges the name. */
export function textOrNull(input: HTMLInputElement): string | null {
  const v = input.value.trim();
  return v === '' ? null : v;
}

/** The cohort fields of a group quota ("Cohort", "Borrow at most", "Lend at most",
 * "Fair-share weight"), their values as a QuotaSpec part, and how to fill them. */
export function cohortFields(num: (name: string) => HTMLInputElement) {
  const cohort = h('input', {
    name: 'cohort',
    autocomplete: 'off',
    placeholder: 'none',
    maxlength: 64
  }) as HTMLInputElement;
  const borrow = num('borrow_limit');
  const lend = num('lend_limit');
  const share = num('fair_share');
  share.placeholder = 'Max GPU units, else 1';
  const row = h(
    'div',
    { class: 'gh-row gh-cohort-fields' },
    field(
      'Cohort (groups that lend each other unused GPUs)',
      cohort,
      'groups naming the same cohort; needs Max GPU units'
    ),
    field('Borrow at most', borrow, 'GPU units at once, from the cohort'),
    field('Lend at most', lend, 'GPU units of its unused share'),
    field('Fair-share weight', share, 'its share of the queue, against other groups')
  );
  return {
    row,
    read: (): Partial<QuotaSpec> => ({
      cohort: textOrNull(cohort),
      borrow_limit: numberOrNull(borrow),
      lend_limit: numberOrNull(lend),
      fair_share: numberOrNull(share)
    }),
    fill: (q: Partial<QuotaSpec> | null | undefined) => {
      const str = (v: number | null | undefined) =>
        v === null || v === undefined ? '' : String(v);
      cohort.value = q?.cohort ?? '';
      borrow.value = str(q?.borrow_limit);
      lend.value = str(q?.lend_limit);
      share.value = str(q?.fair_share);
    }
  };
}

/** Globs from a comma-separated field: null when empty (allows all). */
function listOrNull(input: HTMLInputElement): string[] | null {
  const v = input.value.trim();
  return v === ''
    ? null
    : v
        .split(',')
        .map(s => s.trim())
        .filter(Boolean);
}

/** The quota form; `submit(kind, name, spec, create)` does the request. */
function quotaForm(onDone: (s: QuotaStatus) => void, ctx: Parameters<Page>[1]) {
  const kind = h(
    'select',
    { name: 'kind' },
    h('option', { value: 'group' }, 'Group'),
    h('option', { value: 'user' }, 'User')
  ) as HTMLSelectElement;
  const name = h('input', {
    name: 'name',
    required: true,
    autocomplete: 'off',
    placeholder: 'cs101'
  }) as HTMLInputElement;
  const num = (n: string, attrs: Record<string, any> = {}) =>
    h('input', {
      name: n,
      type: 'number',
      step: 'any',
      inputmode: 'decimal',
      ...attrs
    }) as HTMLInputElement;
  const maxUnits = num('max_units', { placeholder: 'no limit' });
  const perUser = num('per_user_max_units', { placeholder: 'no limit' });
  const gpuHours = num('gpu_hours', { placeholder: 'no limit' });
  const credits = num('credits', { placeholder: 'no limit' });
  const spotUnits = num('spot_max_units', { placeholder: 'no limit' });
  const spotHours = num('spot_gpu_hours', { placeholder: 'no limit' });
  const lending = cohortFields(n => num(n, { placeholder: 'no limit' }));
  const priority = num('priority', { step: '1', value: '0' });
  const period = h(
    'select',
    { name: 'period' },
    ...['week', 'day', 'month', 'term'].map(p => h('option', { value: p }, p))
  ) as HTMLSelectElement;
  const termStart = h('input', { name: 'term_start', type: 'date' }) as HTMLInputElement;
  const termEnd = h('input', { name: 'term_end', type: 'date' }) as HTMLInputElement;
  const shapes = h('input', {
    name: 'allowed_shapes',
    placeholder: 'all, or e.g. mig:*, shared'
  }) as HTMLInputElement;
  const profiles = h('input', {
    name: 'allowed_profiles',
    placeholder: 'all, or e.g. gpu-*'
  }) as HTMLInputElement;
  const create = h('input', { name: 'create', type: 'checkbox' }) as HTMLInputElement;
  const termFields = h(
    'div',
    { class: 'gh-row' },
    field('Term start', termStart),
    field('Term end', termEnd)
  );
  const groupOnly = [
    field('Per member', perUser, 'GPU units each member may hold through the group'),
    field('Create the group if the hub lacks it', create),
    lending.row
  ];

  const sync = () => {
    termFields.hidden = period.value !== 'term';
    for (const el of groupOnly) {
      el.hidden = kind.value !== 'group';
    }
  };
  kind.addEventListener('change', sync);
  period.addEventListener('change', sync);

  const foot = formFoot('Set quota');
  const form = h(
    'form',
    { class: 'gh-form gh-quota-form', 'aria-label': 'Set a quota' },
    h('div', { class: 'gh-row' }, field('For', kind), field('Name', name)),
    h(
      'div',
      { class: 'gh-row' },
      field('Max GPU units', maxUnits, 'at once, queued included'),
      groupOnly[0],
      field('GPU-hours per period', gpuHours),
      field('Credits per period', credits, "GPU-hours × the models' rates"),
      field('Period', period)
    ),
    termFields,
    h(
      'div',
      { class: 'gh-row' },
      field('Spot GPUs at once', spotUnits, 'preemptible, apart from Max GPU units'),
      field('Spot GPU-hours per period', spotHours, 'apart from GPU-hours; credits pay for both')
    ),
    h(
      'div',
      { class: 'gh-row' },
      field('Allowed shapes', shapes, 'comma-separated globs'),
      field('Allowed profiles', profiles, 'comma-separated globs'),
      field('Priority', priority, '-1000 to 1000')
    ),
    lending.row,
    h('div', { class: 'gh-row' }, groupOnly[1]),
    h('div', { class: 'gh-row' }, foot.submit, foot.done),
    foot.errors
  ) as HTMLFormElement;
  sync();

  onSubmit(form, foot, async () => {
    const k = kind.value as 'user' | 'group';
    const who = name.value.trim();
    if (!who) {
      throw new FieldError('name', `give the ${k}'s name`);
    }
    const shown: Partial<QuotaSpec> = {
      max_units: numberOrNull(maxUnits),
      gpu_hours: numberOrNull(gpuHours),
      credits: numberOrNull(credits),
      spot_max_units: numberOrNull(spotUnits),
      spot_gpu_hours: numberOrNull(spotHours),
      period: period.value as QuotaSpec['period'],
      allowed_shapes: listOrNull(shapes),
      allowed_profiles: listOrNull(profiles),
      priority: numberOrNull(priority) ?? 0
    };
    // the dates go with a term only (the service refuses them with another period)
    shown.term_start = period.value === 'term' ? termStart.value || null : null;
    shown.term_end = period.value === 'term' ? termEnd.value || null : null;
    const groupSpec =
      k === 'group'
        ? { per_user_max_units: numberOrNull(perUser), ...lending.read() }
        : {
            per_user_max_units: null,
            cohort: null,
            borrow_limit: null,
            lend_limit: null,
            fair_share: null
          };
    // the quota as it is, with the fields this form shows as they are in the form
    const spec = { ...(await currentQuota(ctx, k, who)), ...shown, ...groupSpec };
    const path =
      `/quotas/${k}s/${encodeURIComponent(who)}` +
      (k === 'group' && create.checked ? '?create=true' : '');
    const status = await ctx.api.put<QuotaStatus>(path, spec);
    foot.done.textContent = `Set the quota of ${k} ${who}.`;
    onDone(status);
  });

  /** Fill the form with an existing quota (to change it). */
  const fill = (s: QuotaStatus) => {
    const q = s.quota;
    kind.value = s.kind;
    name.value = s.name;
    const str = (v: number | null | undefined) => (v === null || v === undefined ? '' : String(v));
    maxUnits.value = str(q?.max_units);
    perUser.value = str(q?.per_user_max_units);
    gpuHours.value = str(q?.gpu_hours);
    credits.value = str(q?.credits);
    spotUnits.value = str(q?.spot_max_units);
    spotHours.value = str(q?.spot_gpu_hours);
    period.value = q?.period ?? 'week';
    termStart.value = q?.term_start ?? '';
    termEnd.value = q?.term_end ?? '';
    shapes.value = q?.allowed_shapes?.join(', ') ?? '';
    profiles.value = q?.allowed_profiles?.join(', ') ?? '';
    priority.value = String(q?.priority ?? 0);
    lending.fill(q);
    create.checked = false;
    clearFoot(foot);
    sync();
    form.scrollIntoView({ block: 'nearest' });
    name.focus();
  };
  return { form, fill };
}

export const page: Page = async (root, ctx) => {
  const users = h('div', { class: 'gh-quotas-users' });
  const groups = h('div', { class: 'gh-quotas-groups' });
  const defaults = h('p', { class: 'gh-muted gh-quotas-default' });
  const { form, fill } = quotaForm(() => void load(), ctx);
  root.append(
    h('h1', null, 'Quotas'),
    section('Users', defaults, users),
    section('Groups', groups),
    section(
      'Set a quota',
      h(
        'p',
        { class: 'gh-muted' },
        'Empty fields mean no limit. The quota replaces the one the user or group has, and takes effect at once.'
      ),
      form
    )
  );

  // the spot column only in a table where some quota has a spot allowance or spot use,
  // the cohort column where some group lends and borrows in a cohort
  const rows = (list: QuotaStatus[], spot: boolean, cohorts: boolean) =>
    list.map(s => [
      h('strong', { class: 'gh-quota-name' }, s.name),
      unitsCell(s),
      hoursCell(s),
      creditsCell(s),
      ...(spot ? [spotCell(s)] : []),
      ...(cohorts ? [cohortCell(s)] : []),
      rulesText(s.quota, s.kind),
      h(
        'span',
        { class: 'gh-actions' },
        h('button', { type: 'button', class: 'gh-button', onclick: () => fill(s) }, 'Edit'),
        button(
          'Unset',
          root,
          async () => {
            const what =
              s.kind === 'user'
                ? `${s.name} falls back to the default user quota`
                : `group ${s.name} is then not limited`;
            if (
              !window.confirm(
                `Remove the quota of ${s.kind} ${s.name}? ${what[0].toUpperCase()}${what.slice(1)}.`
              )
            ) {
              return;
            }
            await ctx.api.delete(`/quotas/${s.kind}s/${encodeURIComponent(s.name)}`);
            await load();
          },
          {
            class: 'gh-button gh-danger',
            'data-action': 'unset',
            'data-name': `${s.kind}:${s.name}`
          }
        )
      )
    ]);

  async function load(): Promise<void> {
    try {
      const data = await ctx.api.get<QuotaList>('/quotas');
      const d = data.default_user_quota;
      defaults.textContent = d
        ? `Users without a quota of their own have the default: ${limit(d.max_units)} at once, ` +
          `${d.gpu_hours === null ? 'no GPU-hour limit' : `${fmtAmount(d.gpu_hours)} GPU-hours per ${d.period}`}` +
          (d.credits === null || d.credits === undefined
            ? ''
            : `, ${fmtAmount(d.credits)} credits per ${d.period}`) +
          (spotSpecText(d) ? `; ${spotSpecText(d)}` : '') +
          (rulesText(d, 'user') !== '—' ? `; ${rulesText(d, 'user')}` : '') +
          '.'
        : 'Users without a quota of their own are not limited.';
      const by = (k: string) =>
        data.quotas.filter(q => q.kind === k).sort((a, b) => a.name.localeCompare(b.name));
      const quotaTable = (who: string, list: QuotaStatus[]) => {
        const spot = list.some(hasSpot);
        const cohorts = list.some(inCohort);
        const headers = [
          who,
          'GPUs at once',
          'GPU-hours this period',
          'Credits this period',
          ...(spot ? ['Spot (preemptible)'] : []),
          ...(cohorts ? ['Cohort'] : []),
          'Other limits',
          ''
        ];
        return table(headers, rows(list, spot, cohorts));
      };
      const u = by('user');
      const g = by('group');
      users.replaceChildren(
        u.length ? quotaTable('User', u) : empty('No user has a quota of their own.')
      );
      groups.replaceChildren(g.length ? quotaTable('Group', g) : empty('No group has a quota.'));
      clearError(root, 'load');
    } catch (e) {
      showError(root, e, 'load');
    }
  }

  await load();
};

/**
 * My GPUs (everyone): the user's leases (what, where, since, GPU-hours, activity; a spot
 * lease tagged, and one the scheduler is taking back for guaranteed work with a warning
 * row and its deadline), queued requests with position, estimate, reason and what is free
 * instead, jobs, quota bars (GPUs at once, GPU-hours, credits, the spot allowance) with
 * their reset time, the user's own GPU-hours per day, and what they may ask for now (each
 * shape with the models behind it, its price, and the scheduler's answer; spot capacity in
 * a sentence), and a link to the user's statement (console/statements). From GET /me,
 * /jobs, /usage and /me/options.
 */
import { stackedBars } from '../charts';
import { Ctx, Page } from '../context';
import {
  autoRefresh,
  bar,
  empty,
  fmtAgo,
  fmtAmount,
  fmtClock,
  fmtNumber,
  fmtSeconds,
  fmtTime,
  fmtUnits,
  h,
  section,
  table,
  tag
} from '../dom';
import {
  activityTag,
  deviceText,
  endButton,
  nodesText,
  shapeText,
  shapeWithUnits
} from '../leases';
import { Job, Lease, Me, Options, QuotaStatus, Usage } from '../types';
import { hasSpot, spotUnitsText } from './quotas';

/** Days shown in the usage chart. */
const USAGE_DAYS = 30;

/** The columns of the leases table. */
const LEASE_HEADERS = ['Lease', 'What', 'Where', 'Since', 'GPU-hours', 'Activity'];

/** What a preemption notice asks, in a sentence: "Preempted for guaranteed work: stops by
 * 14:05 (checkpoint now)". */
export function preemptionText(x: Lease): string {
  const deadline = x.preemption?.deadline;
  const past = deadline !== undefined && new Date(deadline).getTime() <= Date.now();
  return past
    ? `Preempted for guaranteed work: its time ran out at ${fmtClock(deadline)}; it is being stopped`
    : `Preempted for guaranteed work: stops by ${fmtClock(deadline)} (checkpoint now)`;
}

function leaseRows(leases: Lease[]): (Node | string)[][] {
  return leases.map(x => [
    h(
      'span',
      { class: 'gh-lease' },
      h('strong', null, `#${x.id}`),
      x.label ? h('span', { class: 'gh-muted' }, ` ${x.label}`) : null,
      x.tier === 'spot'
        ? [
            ' ',
            h(
              'span',
              {
                class: 'gh-tag gh-tag-spot',
                title:
                  'Spot: preemptible, at a discount; taken back when guaranteed work needs the GPU'
              },
              'spot'
            )
          ]
        : null
    ),
    h(
      'div',
      null,
      h('div', null, shapeWithUnits(x.shape, x.units)),
      ...x.devices.map(d => h('div', { class: 'gh-muted gh-small' }, deviceText(d))),
      x.borrowed_from
        ? h('div', { class: 'gh-muted gh-small' }, `borrowed from group ${x.borrowed_from}`)
        : null
    ),
    h('span', null, nodesText(x.node), x.simulated ? [' ', tag('simulated', 'sim')] : null),
    h(
      'span',
      { title: x.granted_at ?? '' },
      fmtTime(x.granted_at),
      h('div', { class: 'gh-muted gh-small' }, fmtAgo(x.granted_at))
    ),
    fmtAmount(x.gpu_hours),
    h(
      'div',
      null,
      activityTag(x.activity),
      x.idle_warning
        ? h(
            'div',
            { class: 'gh-warn gh-small' },
            `idle: stopped at ${fmtTime(x.idle_warning.reclaim_at)} unless used or kept`
          )
        : null
    )
  ]);
}

/** The leases table: a row per lease, and under a lease the scheduler is taking back a
 * warning row across the table with its deadline. */
function leasesTable(leases: Lease[]): HTMLTableElement {
  const t = table(LEASE_HEADERS, leaseRows(leases));
  const rows = [...t.tBodies[0].rows];
  leases.forEach((x, i) => {
    rows[i].dataset.lease = String(x.id);
    if (!x.preemption) {
      return;
    }
    rows[i].classList.add('gh-preempted');
    rows[i].after(
      h(
        'tr',
        { class: 'gh-preempt-row', 'data-lease': x.id },
        h(
          'td',
          { colspan: LEASE_HEADERS.length },
          h(
            'div',
            {
              class: 'gh-preempt',
              title: `notice at ${fmtTime(x.preemption.notice_at)}; deadline ${fmtTime(x.preemption.deadline)}`
            },
            h('strong', null, `#${x.id}: `),
            preemptionText(x)
          )
        )
      )
    );
  });
  return t;
}

function queuedCard(
  ctx: Ctx,
  x: Lease,
  where: HTMLElement,
  redraw: () => Promise<void>
): HTMLElement {
  const w = x.waiting;
  return h(
    'div',
    { class: 'gh-card gh-queued', 'data-lease': x.id },
    h(
      'div',
      { class: 'gh-card-head' },
      h('strong', null, `#${x.id} · ${shapeText(x.shape)}`),
      tag(`position ${x.position ?? w?.position ?? '?'}`, 'queue'),
      h('span', { class: 'gh-muted gh-small' }, `requested ${fmtAgo(x.requested_at)}`),
      h('span', { class: 'gh-spacer' }),
      endButton(ctx, x, where, redraw)
    ),
    w
      ? h(
          'dl',
          { class: 'gh-why' },
          h('dt', null, 'Why'),
          h('dd', { class: 'gh-reason' }, w.message),
          h('dt', null, 'When'),
          h('dd', null, w.estimate.message),
          w.alternatives.length
            ? [
                h('dt', null, 'Free now'),
                h('dd', null, w.alternatives.map(a => a.message).join('; '))
              ]
            : null
        )
      : h('p', { class: 'gh-muted' }, 'Waiting for its turn.')
  );
}

function quotaBox(q: QuotaStatus): HTMLElement {
  const title =
    q.kind === 'user' ? (q.default ? 'Your quota (the default)' : 'Your quota') : `Group ${q.name}`;
  const parts: Node[] = [];
  const spec = q.quota;
  const credits = spec?.credits ?? null; // absent from an older service
  const spotHours = spec?.spot_gpu_hours ?? null;
  const spot = hasSpot(q);
  if (!spec || (spec.max_units === null && spec.gpu_hours === null && credits === null)) {
    parts.push(h('p', { class: 'gh-muted' }, spot ? 'No limit on guaranteed GPUs.' : 'No limit.'));
  }
  if (spec && spec.max_units !== null) {
    const used = q.units_active + q.units_queued;
    const queued = q.units_queued ? ` (${fmtNumber(q.units_queued)} of them queued)` : '';
    parts.push(
      h(
        'div',
        { class: 'gh-quota-line' },
        h('span', { class: 'gh-quota-what' }, 'GPUs at once'),
        bar(
          spec.max_units ? used / spec.max_units : 1,
          `${fmtNumber(used)} of ${fmtUnits(spec.max_units)}${queued}`
        )
      )
    );
  }
  if (spec && spec.gpu_hours !== null) {
    const used = q.gpu_hours_used ?? 0;
    parts.push(
      h(
        'div',
        { class: 'gh-quota-line' },
        h('span', { class: 'gh-quota-what' }, 'GPU-hours'),
        bar(
          spec.gpu_hours ? used / spec.gpu_hours : 1,
          `${fmtAmount(used)} of ${fmtAmount(spec.gpu_hours)} h`
        )
      )
    );
  }
  if (credits !== null) {
    const used = q.credits_used ?? 0;
    parts.push(
      h(
        'div',
        { class: 'gh-quota-line' },
        h('span', { class: 'gh-quota-what' }, 'Credits'),
        bar(credits ? used / credits : 1, `${fmtAmount(used)} of ${fmtAmount(credits)} credits`)
      )
    );
  }
  if (spot) {
    // the spot allowance, apart from the guaranteed limits above
    const active = q.spot_units_active ?? 0;
    const max = spec?.spot_max_units ?? null;
    parts.push(
      h(
        'div',
        { class: 'gh-quota-line gh-quota-spot' },
        h('span', { class: 'gh-quota-what' }, 'Spot GPUs'),
        max === null
          ? h('span', null, spotUnitsText(q))
          : bar(max ? active / max : 1, `${fmtNumber(active)} of ${fmtUnits(max)}`)
      )
    );
  }
  if (spotHours !== null) {
    const used = q.spot_gpu_hours_used ?? 0;
    parts.push(
      h(
        'div',
        { class: 'gh-quota-line gh-quota-spot' },
        h('span', { class: 'gh-quota-what' }, 'Spot GPU-hours'),
        bar(spotHours ? used / spotHours : 1, `${fmtAmount(used)} of ${fmtAmount(spotHours)} h`)
      )
    );
  }
  if (spec && (spec.gpu_hours !== null || credits !== null || spotHours !== null)) {
    // one period for every budget
    parts.push(
      h(
        'p',
        { class: 'gh-muted gh-small' },
        q.period ?? `per ${spec.period}${q.period_end ? ', resets ' + fmtTime(q.period_end) : ''}`
      )
    );
  }
  return h(
    'div',
    { class: 'gh-card gh-quota', 'data-kind': q.kind, 'data-name': q.name },
    h('h3', null, title),
    ...parts
  );
}

/** Every day from `days` ago to today (UTC), as YYYY-MM-DD. */
function lastDays(days: number): string[] {
  const out: string[] = [];
  const today = Date.UTC(
    new Date().getUTCFullYear(),
    new Date().getUTCMonth(),
    new Date().getUTCDate()
  );
  for (let i = days - 1; i >= 0; i--) {
    out.push(new Date(today - i * 86400000).toISOString().slice(0, 10));
  }
  return out;
}

async function drawUsage(ctx: Ctx, canvas: HTMLCanvasElement, note: HTMLElement): Promise<void> {
  const days = lastDays(USAGE_DAYS);
  const usage = await ctx.api.get<Usage>('/usage', {
    user: ctx.user,
    by: 'day,group',
    start: days[0]
  });
  const groups = [...new Set(usage.rows.map(r => r.group ?? ''))].sort();
  const series = groups.map(g => ({
    label: g ? `group ${g}` : 'own quota',
    data: days.map(d =>
      usage.rows
        .filter(r => r.day === d && (r.group ?? '') === g)
        .reduce((s, r) => s + r.gpu_hours, 0)
    )
  }));
  const labels = days.map(d => d.slice(5));
  stackedBars(
    canvas,
    labels,
    series.length ? series : [{ label: '', data: days.map(() => 0) }],
    'GPU-hours'
  );
  note.textContent = `${fmtAmount(usage.total_gpu_hours)} GPU-hours in the last ${USAGE_DAYS} days (UTC days; running leases count up to now).`;
}

/** Spot capacity in a sentence, from the service's numbers: "Spot: idle GPUs at 30 % of
 * the price for jobs; taken back with 2 min notice"; null where it is not offered. */
export function spotText(spot: Options['spot'] | undefined): string | null {
  if (!spot?.enabled) {
    return null;
  }
  const pct = fmtAmount(spot.discount * 100);
  const first =
    spot.min_runtime_s > 0 ? `, never in their first ${fmtSeconds(spot.min_runtime_s)}` : '';
  return `Spot: idle GPUs at ${pct} % of the price for jobs; taken back with ${fmtSeconds(spot.grace_s)} notice${first}.`;
}

function spotLine(options: Options): HTMLElement | null {
  const text = spotText(options.spot); // absent from an older service
  return text ? h('p', { class: 'gh-spot-note gh-small' }, text) : null;
}

/** The shapes the user may ask for now: the models behind each, and what asking would
 * get (granted now, queued, or the quota's refusal), as the scheduler answers it; then the
 * spawn profiles open to the user, a CPU-only one (no shape) said plainly to be free, and
 * one whose jobs may span several nodes said so. */
function optionsTable(options: Options): Node {
  const spot = spotLine(options);
  const verdict = { grant: 'now', queue: 'queued', refuse: 'no' } as const;
  const shapes = table(
    ['GPUs', 'Models', 'Price', 'Granted', 'Now'],
    options.shapes.map(s => [
      s.text,
      s.models_text || '—',
      s.credits_text ?? '—',
      tag(verdict[s.outcome], s.outcome),
      h('span', { class: 'gh-small' }, s.message ?? '')
    ])
  );
  shapes.classList.add('gh-shapes');
  if (options.profiles.length === 0) {
    return h('div', null, spot, shapes);
  }
  const profiles = table(
    ['Server profile', 'GPUs', 'Price', ''],
    options.profiles.map(p => [
      h(
        'span',
        { title: p.description },
        p.display_name,
        h('span', { class: 'gh-muted' }, ` ${p.name}`)
      ),
      p.shape ? (p.models_text ? `${p.text} (${p.models_text})` : p.text) : 'No GPU (CPU only)',
      p.credits_text ?? '—',
      h(
        'span',
        null,
        p.shape ? (p.default ? tag('default') : '') : tag('quota-free', 'grant'),
        // jobs of this profile may span several nodes (gpuhub job submit --nodes)
        (p.max_nodes ?? 1) > 1 ? [' ', tag(`jobs: up to ${p.max_nodes} nodes`)] : null
      )
    ])
  );
  profiles.classList.add('gh-profiles');
  return h('div', null, spot, shapes, profiles);
}

export const page: Page = (root, ctx) => {
  const summary = h('p', { class: 'gh-lead' });
  const leases = h('div');
  const queued = h('div');
  const jobs = h('div');
  const quotas = h('div', { class: 'gh-cards' });
  const offered = h('div', { class: 'gh-options' });
  const canvas = h('canvas', { 'aria-label': 'Your GPU-hours per day' }) as HTMLCanvasElement;
  const note = h('p', { class: 'gh-muted gh-small' });
  root.append(
    h('h1', null, 'My GPUs'),
    summary,
    section('Leases', leases),
    section('Waiting', queued),
    h(
      'div',
      { class: 'gh-columns' },
      section('Quotas', quotas),
      section(
        'My usage',
        h('div', { class: 'gh-chart' }, canvas),
        note,
        h(
          'p',
          { class: 'gh-small' },
          h(
            'a',
            { class: 'gh-statement-link', href: ctx.base + 'console/statements' },
            'Statement: credits by month, and the rates'
          )
        )
      )
    ),
    section('Jobs', jobs),
    section('What you may ask for', offered)
  );
  root.querySelectorAll('section')[1].classList.add('gh-waiting');

  let round = 0;
  const draw = async (): Promise<void> => {
    const [me, jobList, options] = await Promise.all([
      ctx.api.get<Me>('/me'),
      ctx.api.get<{ jobs: Job[] }>('/jobs', { user: ctx.user, limit: 200 }),
      ctx.api.get<Options>('/me/options')
    ]);
    offered.replaceChildren(optionsTable(options));
    const held = me.leases.reduce((s, x) => s + x.units, 0);
    summary.textContent =
      me.leases.length || me.queued.length
        ? `You hold ${fmtUnits(held)} in ${me.leases.length} lease${me.leases.length === 1 ? '' : 's'}` +
          (me.queued.length
            ? `; ${me.queued.length} request${me.queued.length === 1 ? '' : 's'} waiting.`
            : '.')
        : 'You hold no GPUs now. Start a server from the hub, or submit a job from JupyterLab.';
    leases.replaceChildren(me.leases.length ? leasesTable(me.leases) : empty('No active leases.'));
    queued.replaceChildren(
      ...(me.queued.length
        ? me.queued.map(x => queuedCard(ctx, x, root, draw))
        : [empty('Nothing waiting.')])
    );
    quotas.replaceChildren(...me.quotas.map(quotaBox));
    const recent = [...jobList.jobs].sort((a, b) => b.id - a.id).slice(0, 10);
    jobs.replaceChildren(
      recent.length
        ? table(
            ['Job', 'Status', 'GPUs', 'Where', 'Started', 'GPU-hours', 'Note'],
            recent.map(j => [
              h('span', null, h('strong', null, `#${j.id}`), ` ${j.name}`),
              tag(j.status, j.status),
              j.shape_text,
              nodesText(j.node),
              fmtTime(j.started_at ?? j.created_at),
              fmtAmount(j.gpu_hours),
              h('span', { class: 'gh-small' }, j.reason ?? '')
            ])
          )
        : empty('No jobs. Submit one from JupyterLab (Run as GPU job) or with gpuhub job submit.')
    );
    if (round++ % 6 === 0) {
      await drawUsage(ctx, canvas, note); // once a minute is plenty
    }
  };
  autoRefresh(root, draw);
};

/**
 * Usage (admins): GPU-hours per day, week or month, stacked by user and by group, over a
 * date range, and a table of totals. Everything comes from `GET /usage` (the same
 * numbers as `gpuhub usage` and the CSV export).
 */
import { stackedBars } from '../charts';
import { Page } from '../context';
import { clearError, empty, fmtAmount, h, section, showError, table } from '../dom';
import { Usage, UsageRow } from '../types';

type Period = 'day' | 'week' | 'month';

const DAY_MS = 86400000;
/** The range shown when a period is picked and the dates were not changed by hand. */
const DEFAULT_SPAN: Record<Period, number> = { day: 30, week: 12 * 7, month: 365 };
const NO_GROUP = '(no group)';

/** A UTC date as YYYY-MM-DD. */
function ymd(t: Date): string {
  return t.toISOString().slice(0, 10);
}

function utcDay(s: string): Date {
  return new Date(s + 'T00:00:00Z');
}

/** Every period label from `start` to `end` (dates, inclusive) in the form the API names
 * them: days, the Mondays of weeks, or `YYYY-MM`. */
export function periodLabels(by: Period, start: string, end: string): string[] {
  const out: string[] = [];
  const last = utcDay(end);
  let t = utcDay(start);
  if (by === 'week') {
    t = new Date(t.getTime() - ((t.getUTCDay() + 6) % 7) * DAY_MS);
  } else if (by === 'month') {
    t = new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), 1));
  }
  while (t <= last && out.length < 1000) {
    out.push(by === 'month' ? ymd(t).slice(0, 7) : ymd(t));
    t =
      by === 'day'
        ? new Date(t.getTime() + DAY_MS)
        : by === 'week'
          ? new Date(t.getTime() + 7 * DAY_MS)
          : new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth() + 1, 1));
  }
  return out;
}

/** Stacked series, one per user or group, biggest first, over `labels`. */
function series(rows: UsageRow[], by: Period, key: 'user' | 'group', labels: string[]) {
  const index = new Map(labels.map((l, i) => [l, i]));
  const per = new Map<string, number[]>();
  for (const r of rows) {
    const name = (key === 'user' ? r.user : r.group) ?? NO_GROUP;
    const i = index.get(String(r[by]));
    if (i === undefined) {
      continue;
    }
    const data = per.get(name) ?? labels.map(() => 0);
    data[i] += r.gpu_hours;
    per.set(name, data);
  }
  const total = (d: number[]) => d.reduce((a, b) => a + b, 0);
  return [...per.entries()]
    .sort((a, b) => total(b[1]) - total(a[1]) || a[0].localeCompare(b[0]))
    .map(([label, data]) => ({ label, data }));
}

function totalsTable(rows: UsageRow[], key: 'user' | 'group', title: string): HTMLElement {
  const sorted = [...rows].sort((a, b) => b.gpu_hours - a.gpu_hours);
  return table(
    [title, 'GPU-hours', 'Leases'],
    sorted.map(r => [
      String((key === 'user' ? r.user : r.group) ?? NO_GROUP),
      fmtAmount(r.gpu_hours),
      String(r.leases)
    ])
  );
}

export const page: Page = async (root, ctx) => {
  let by: Period = 'day';
  let touched = false; // the dates were changed by hand: keep them across periods
  const today = ymd(new Date());
  const startInput = h('input', {
    type: 'date',
    name: 'start',
    'aria-label': 'From',
    max: today
  }) as HTMLInputElement;
  const endInput = h('input', {
    type: 'date',
    name: 'end',
    'aria-label': 'To',
    max: today,
    value: today
  }) as HTMLInputElement;
  const setDefaultRange = () => {
    startInput.value = ymd(new Date(Date.now() - (DEFAULT_SPAN[by] - 1) * DAY_MS));
    endInput.value = today;
  };
  setDefaultRange();

  const buttons = (['day', 'week', 'month'] as Period[]).map(p =>
    h(
      'button',
      {
        type: 'button',
        class: 'gh-button gh-period',
        'data-period': p,
        'aria-pressed': String(p === by),
        onclick: () => {
          by = p;
          for (const b of buttons) {
            b.setAttribute('aria-pressed', String(b.dataset.period === by));
          }
          if (!touched) {
            setDefaultRange();
          }
          void draw();
        }
      },
      p === 'day' ? 'Day' : p === 'week' ? 'Week' : 'Month'
    )
  );
  for (const input of [startInput, endInput]) {
    input.addEventListener('change', () => {
      touched = true;
      void draw();
    });
  }

  const status = h('p', { class: 'gh-usage-status', 'aria-live': 'polite' });
  const userCanvas = h('canvas', {
    'aria-label': 'GPU-hours by user',
    role: 'img'
  }) as HTMLCanvasElement;
  const groupCanvas = h('canvas', {
    'aria-label': 'GPU-hours by group',
    role: 'img'
  }) as HTMLCanvasElement;
  const totals = h('div', { class: 'gh-usage-totals' });
  root.append(
    h('h1', null, 'Usage'),
    h(
      'div',
      { class: 'gh-toolbar gh-usage-controls' },
      h('span', { class: 'gh-segmented', role: 'group', 'aria-label': 'Period' }, ...buttons),
      h('label', null, 'From ', startInput),
      h('label', null, 'To ', endInput),
      h(
        'a',
        {
          class: 'gh-link gh-usage-csv',
          href: '#',
          download: 'gpuhub-usage.csv',
          onclick: (e: Event) => updateCsv(e.currentTarget as HTMLAnchorElement)
        },
        'Download CSV'
      )
    ),
    status,
    section(
      'GPU-hours by user',
      h('div', { class: 'gh-chart gh-usage-chart', 'data-by': 'user' }, userCanvas)
    ),
    section(
      'GPU-hours by group',
      h('div', { class: 'gh-chart gh-usage-chart', 'data-by': 'group' }, groupCanvas)
    ),
    section('Totals', totals)
  );

  /** The query of the range: `end` is the day after the last date (the API's end is
   * exclusive; a future end counts up to now). */
  const range = () => {
    const start = startInput.value;
    const last = endInput.value || today;
    const end = ymd(new Date(utcDay(last).getTime() + DAY_MS));
    return { start, end, last };
  };

  function updateCsv(a: HTMLAnchorElement): void {
    const { start, end } = range();
    a.href = ctx.api.url('/usage', {
      by: `${by},user,group`,
      start: start || undefined,
      end,
      format: 'csv'
    });
  }

  let seq = 0;
  async function draw(): Promise<void> {
    const mine = ++seq;
    const { start, end, last } = range();
    clearError(root, 'load');
    if (start && start > last) {
      showError(root, new Error('"From" must not be after "To"'), 'load');
      return;
    }
    const q = { start: start || undefined, end };
    status.textContent = 'Loading…';
    try {
      const [byUser, byGroup, users, groups] = await Promise.all(
        [`${by},user`, `${by},group`, 'user', 'group'].map(b =>
          ctx.api.get<Usage>('/usage', { ...q, by: b })
        )
      );
      if (mine !== seq) {
        return; // a newer draw is under way
      }
      const labels = periodLabels(by, (start || byUser.start).slice(0, 10), last);
      stackedBars(userCanvas, labels, series(byUser.rows, by, 'user', labels), 'GPU-hours');
      stackedBars(groupCanvas, labels, series(byGroup.rows, by, 'group', labels), 'GPU-hours');
      root.dataset.by = by;
      status.textContent =
        `${fmtAmount(users.total_gpu_hours)} GPU-hours from ${(start || byUser.start).slice(0, 10)} to ${last} ` +
        `(UTC ${by === 'day' ? 'days' : by === 'week' ? 'weeks from Monday' : 'months'}).`;
      totals.replaceChildren(
        users.rows.length
          ? h(
              'div',
              { class: 'gh-columns' },
              h('div', { class: 'gh-usage-by-user' }, totalsTable(users.rows, 'user', 'User')),
              h('div', { class: 'gh-usage-by-group' }, totalsTable(groups.rows, 'group', 'Group'))
            )
          : empty('No GPU-hours in this range.'),
        h(
          'p',
          { class: 'gh-usage-total' },
          'Total: ',
          h(
            'strong',
            { 'data-total': String(users.total_gpu_hours) },
            fmtAmount(users.total_gpu_hours)
          ),
          ' GPU-hours'
        )
      );
    } catch (e) {
      if (mine === seq) {
        status.textContent = '';
        showError(root, e, 'load');
      }
    }
  }

  await draw();
};

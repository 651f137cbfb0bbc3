/**
 * Statements (everyone): what the ledger charged in a calendar month (UTC), per group,
 * user, GPU model, tier and rate, with totals and a CSV download (`GET /statements`); a
 * user sees their own, admins anyone's, filtered by group and user. Below it the rate
 * card (`GET /rates`): credits per GPU-hour of each model and where that rate comes from;
 * admins set a model's rate in place (`PUT /rates/{model}`) or reset it to the configured
 * one (`DELETE`), a refusal shown on the model's row in the service's words.
 */
import { Ctx, Page } from '../context';
import {
  button,
  clearError,
  empty,
  fmtAmount,
  fmtTime,
  h,
  section,
  showError,
  table
} from '../dom';
import { inWords, numberOrNull } from '../forms';
import { Rate, RateCard, Statement, StatementRow } from '../types';

const NO_GROUP = '(no group)';

/** How a rate's edit field speaks of the API's field. */
const RATE_WORDS = { labels: new Map([['credits_per_gpu_hour', 'Credits per GPU-hour']]) };

/** Where a rate comes from, in words. */
const SOURCES: Record<Rate['source'], string> = {
  configuration: 'configured',
  admin: 'set by an admin',
  default: 'the default'
};

/** This month (UTC) as YYYY-MM. */
export function thisMonth(now: Date = new Date()): string {
  return now.toISOString().slice(0, 7);
}

/** A month (YYYY-MM) as the statement's period: its first day and the next month's. */
export function monthRange(month: string): { start: string; end: string } {
  const [y, m] = month.split('-').map(Number);
  const next = new Date(Date.UTC(y, m, 1)).toISOString().slice(0, 10);
  return { start: `${month}-01`, end: next };
}

/** "December 2026" of a date (YYYY-MM-DD). */
function monthName(day: string): string {
  return new Date(day + 'T00:00:00Z').toLocaleString('en-US', {
    month: 'long',
    year: 'numeric',
    timeZone: 'UTC'
  });
}

/** A rate with its discount where there is one: "2", "2 × 0.5". */
function rateText(r: StatementRow): string {
  const rate = fmtAmount(r.credits_per_gpu_hour);
  return r.discount === 1 ? rate : `${rate} × ${fmtAmount(r.discount)}`;
}

/** The statement's table, with a foot of totals. */
function statementTable(s: Statement): HTMLElement {
  const t = table(
    [
      'Group',
      'User',
      'GPU model',
      'Tier',
      'Credits per GPU-hour',
      'GPU-hours',
      'Credits',
      'Leases'
    ],
    s.rows.map(r => [
      r.group ?? NO_GROUP,
      r.user,
      r.model,
      r.tier,
      rateText(r),
      fmtAmount(r.gpu_hours),
      fmtAmount(r.credits),
      String(r.leases)
    ])
  );
  t.classList.add('gh-statement');
  const leases = s.rows.reduce((n, r) => n + r.leases, 0);
  t.append(
    h(
      'tfoot',
      null,
      h(
        'tr',
        { class: 'gh-statement-total' },
        h('th', { scope: 'row', colspan: 5 }, 'Total'),
        h('td', { 'data-total': 'gpu_hours' }, fmtAmount(s.total_gpu_hours)),
        h('td', { 'data-total': 'credits' }, fmtAmount(s.total_credits)),
        h('td', null, String(leases))
      )
    )
  );
  return t;
}

/** The source cell: where the rate comes from, and who set it when. */
function sourceCell(r: Rate): Node {
  return h(
    'span',
    { 'data-source': r.source },
    SOURCES[r.source],
    r.source === 'admin'
      ? h(
          'div',
          { class: 'gh-muted gh-small' },
          `${r.updated_by ?? 'someone'}, ${fmtTime(r.updated_at)}`
        )
      : null
  );
}

/** An admin's edit of a rate, in place: the rate, Set and (for an admin's rate) Reset;
 * a refusal is shown above them, in the field's words. */
function rateEdit(r: Rate, ctx: Ctx, reload: () => Promise<void>): HTMLElement {
  const where = h('div', { class: 'gh-rate-edit', 'data-model': r.model });
  const input = h('input', {
    name: 'credits_per_gpu_hour',
    type: 'number',
    step: 'any',
    inputmode: 'decimal',
    value: String(r.credits_per_gpu_hour),
    'aria-label': `Credits per GPU-hour of ${r.model}`
  }) as HTMLInputElement;
  const path = `/rates/${encodeURIComponent(r.model)}`;
  const set = button(
    'Set',
    where,
    async () => {
      const rate = numberOrNull(input);
      await ctx.api.put<Rate>(path, { credits_per_gpu_hour: rate }).catch(e => {
        throw inWords(e, RATE_WORDS);
      });
      await reload();
    },
    { class: 'gh-button', 'data-action': 'set', 'data-model': r.model }
  );
  input.addEventListener('keydown', e => {
    if (e.key === 'Enter') {
      e.preventDefault();
      set.click();
    }
  });
  const reset =
    r.source === 'admin'
      ? button(
          'Reset',
          where,
          async () => {
            await ctx.api.delete<Rate>(path);
            await reload();
          },
          {
            class: 'gh-button gh-danger',
            'data-action': 'reset',
            'data-model': r.model,
            title: 'Back to the configured rate (or the default)'
          }
        )
      : null;
  where.append(h('span', { class: 'gh-actions' }, input, set, reset));
  return where;
}

export const page: Page = async (root, ctx) => {
  const month = h('input', {
    type: 'month',
    name: 'month',
    'aria-label': 'Month',
    max: thisMonth(),
    value: thisMonth()
  }) as HTMLInputElement;
  const group = h('input', {
    name: 'group',
    placeholder: 'all',
    autocomplete: 'off',
    'aria-label': 'Group'
  }) as HTMLInputElement;
  const user = h('input', {
    name: 'user',
    placeholder: 'all',
    autocomplete: 'off',
    'aria-label': 'User'
  }) as HTMLInputElement;
  const csv = h('a', { class: 'gh-link gh-usage-csv gh-statement-csv' }, 'Download CSV');
  const status = h('p', { class: 'gh-usage-status gh-statement-status', 'aria-live': 'polite' });
  const rows = h('div', { class: 'gh-statement-rows' });
  const rates = h('div', { class: 'gh-rates' });
  const rateNote = h('p', { class: 'gh-muted' });
  root.append(
    h('h1', null, 'Statements'),
    h(
      'div',
      { class: 'gh-toolbar gh-statement-controls' },
      h('label', null, 'Month ', month),
      ctx.admin ? [h('label', null, 'Group ', group), h('label', null, 'User ', user)] : null,
      csv
    ),
    status,
    section(ctx.admin ? 'Charges' : 'Your charges', rows),
    section('Rates', rateNote, rates)
  );

  /** The statement's query: the month picked (this one when cleared), and the filters. */
  const query = () => {
    const { start, end } = monthRange(month.value || thisMonth());
    const name = (input: HTMLInputElement) =>
      ctx.admin && input.value.trim() ? input.value.trim() : undefined;
    return { start, end, group: name(group), user: name(user) };
  };

  let seq = 0;
  async function draw(): Promise<void> {
    const mine = ++seq;
    const q = query();
    csv.setAttribute('href', ctx.api.url('/statements', { ...q, format: 'csv' }));
    csv.setAttribute('download', `gpuhub-statement-${q.start.slice(0, 7)}.csv`);
    status.textContent = 'Loading…';
    try {
      const s = await ctx.api.get<Statement>('/statements', q);
      if (mine !== seq) {
        return; // a newer draw is under way
      }
      rows.replaceChildren(s.rows.length ? statementTable(s) : empty('No charges in this month.'));
      const current = q.start.slice(0, 7) === thisMonth();
      status.textContent =
        `${fmtAmount(s.total_credits)} credits for ${fmtAmount(s.total_gpu_hours)} GPU-hours ` +
        `in ${monthName(q.start)} (UTC)` +
        (current ? ' so far; running leases count up to now.' : '.');
      clearError(root, 'load');
    } catch (e) {
      if (mine === seq) {
        status.textContent = '';
        showError(root, e, 'load');
      }
    }
  }

  async function loadRates(): Promise<void> {
    try {
      const card = await ctx.api.get<RateCard>('/rates');
      rateNote.textContent =
        `In credits per GPU-hour of a whole GPU; a MIG slice or a shared seat costs its share. ` +
        `Models without a rate of their own cost the default, ${fmtAmount(card.default_credits_per_gpu_hour)}. ` +
        (ctx.admin
          ? 'A change applies to leases granted from then on; past charges keep their rate.'
          : '');
      const headers = ['GPU model', 'Credits per GPU-hour', 'Source'];
      rates.replaceChildren(
        card.rates.length
          ? table(
              ctx.admin ? [...headers, 'Change'] : headers,
              card.rates.map(r => {
                const cells: Node[] = [
                  h('strong', null, r.model),
                  h('span', { class: 'gh-rate' }, fmtAmount(r.credits_per_gpu_hour)),
                  sourceCell(r)
                ];
                if (ctx.admin) {
                  cells.push(rateEdit(r, ctx, loadRates));
                }
                return cells;
              })
            )
          : empty('The pool has no GPU models yet.')
      );
      rates.querySelectorAll('tbody tr').forEach((tr, i) => {
        (tr as HTMLElement).dataset.model = card.rates[i].model;
      });
      clearError(root, 'rates');
    } catch (e) {
      showError(root, e, 'rates');
    }
  }

  month.addEventListener('change', () => void draw());
  for (const input of [group, user]) {
    input.addEventListener('change', () => void draw());
  }
  await Promise.all([draw(), loadRates()]);
};

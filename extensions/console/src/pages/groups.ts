/**
 * Groups (admins): JupyterHub groups as cohorts, with their members and quota (and, for a
 * group that lends and borrows in a quota cohort, what it borrows and lends now)
 * (`GET /cohorts`); create or update one in a step (`PUT /cohorts/{name}`: members from a
 * roster, one per line, and an optional quota, its spot allowance and quota cohort
 * included; the quota replaces the group's, so the form starts from the quota it has now
 * and changes the fields it shows), add members (`POST /cohorts/{name}/members`) and take
 * one out (`DELETE .../members/{user}`). A card's "Edit quota" fills the form.
 */
import { ApiError } from '../api';
import { Ctx, Page } from '../context';
import { button, clearError, empty, fmtUnits, h, section, showError, tag } from '../dom';
import { clearFoot, field, FieldError, formFoot, inWords, numberOrNull, onSubmit } from '../forms';
import { QuotaStatus } from '../types';
import {
  cohortCell,
  cohortFields,
  creditsCell,
  currentQuota,
  hasSpot,
  hoursCell,
  inCohort,
  rulesText,
  spotCell,
  unitsCell
} from './quotas';

interface CohortItem {
  name: string;
  in_hub?: boolean;
  members: string[];
  quota: QuotaStatus | null;
}

interface CohortChange {
  name: string;
  group_created?: boolean;
  users_created: string[];
  members_added: string[];
  members: string[];
}

/** User names from a roster: one per line (commas and spaces separate too). */
export function names(text: string): string[] {
  return [
    ...new Set(
      text
        .split(/[\s,;]+/)
        .map(s => s.trim())
        .filter(Boolean)
    )
  ];
}

/** How the add-members field of a card speaks of the API's fields. */
const ADD_WORDS = { labels: new Map([['users', 'Add members']]) };

/** What a change did, in a sentence. */
function said(c: CohortChange): string {
  const parts: string[] = [];
  if (c.group_created) {
    parts.push(`created group ${c.name}`);
  }
  if (c.users_created.length) {
    parts.push(
      `created user${c.users_created.length > 1 ? 's' : ''} ${c.users_created.join(', ')}`
    );
  }
  parts.push(c.members_added.length ? `added ${c.members_added.join(', ')}` : 'no new members');
  const s = parts.join('; ');
  return `${s[0].toUpperCase()}${s.slice(1)}; ${c.members.length} member${c.members.length === 1 ? '' : 's'} now.`;
}

/** One cohort: its quota, its members with a remove button each, and an add field;
 * `edit` fills the form with it. */
function cohortCard(
  c: CohortItem,
  ctx: Ctx,
  reload: () => Promise<void>,
  edit: (c: CohortItem) => void
): HTMLElement {
  const card = h('article', { class: 'gh-card gh-cohort', 'data-cohort': c.name });
  const addInput = h('input', {
    name: 'add',
    placeholder: 'user names, comma-separated',
    'aria-label': `Add members to ${c.name}`,
    autocomplete: 'off'
  }) as HTMLInputElement;
  const add = button(
    'Add',
    card,
    async () => {
      const users = names(addInput.value);
      if (!users.length) {
        throw new Error('give one or more user names to add');
      }
      const change = await ctx.api
        .post<CohortChange>(`/cohorts/${encodeURIComponent(c.name)}/members`, { users })
        .catch(e => {
          throw inWords(e, ADD_WORDS);
        });
      addInput.value = '';
      await reload();
      flash(c.name, said(change));
    },
    { class: 'gh-button', 'data-action': 'add' }
  );
  addInput.addEventListener('keydown', e => {
    if (e.key === 'Enter') {
      e.preventDefault();
      add.click();
    }
  });
  const members = c.members.length
    ? h(
        'ul',
        { class: 'gh-members' },
        ...c.members.map(m =>
          h(
            'li',
            { 'data-member': m },
            h('span', null, m),
            button(
              'Remove',
              card,
              async () => {
                if (!window.confirm(`Take ${m} out of ${c.name}? The user stays in the hub.`)) {
                  return;
                }
                await ctx.api.delete(
                  `/cohorts/${encodeURIComponent(c.name)}/members/${encodeURIComponent(m)}`
                );
                await reload();
                flash(c.name, `Took ${m} out of ${c.name}.`);
              },
              {
                class: 'gh-link gh-danger',
                'data-action': 'remove',
                'aria-label': `Remove ${m} from ${c.name}`
              }
            )
          )
        )
      )
    : empty('No members.');
  const q = c.quota;
  card.append(
    h(
      'header',
      { class: 'gh-card-head' },
      h('h3', null, c.name),
      h(
        'span',
        { class: 'gh-muted' },
        `${c.members.length} member${c.members.length === 1 ? '' : 's'}`
      ),
      c.in_hub === false ? tag('not in the hub: quota only', 'idle') : null
    ),
    q
      ? h(
          'div',
          { class: 'gh-cohort-quota' },
          h('div', null, h('span', { class: 'gh-field-label' }, 'GPUs at once'), unitsCell(q)),
          h('div', null, h('span', { class: 'gh-field-label' }, 'GPU-hours'), hoursCell(q)),
          q.quota?.credits === null || q.quota?.credits === undefined
            ? null
            : h('div', null, h('span', { class: 'gh-field-label' }, 'Credits'), creditsCell(q)),
          hasSpot(q)
            ? h(
                'div',
                { class: 'gh-cohort-spot' },
                h('span', { class: 'gh-field-label' }, 'Spot (preemptible)'),
                spotCell(q)
              )
            : null,
          inCohort(q)
            ? h(
                'div',
                { class: 'gh-cohort-lending' },
                h('span', { class: 'gh-field-label' }, 'Cohort'),
                cohortCell(q)
              )
            : null,
          h('div', { class: 'gh-muted' }, rulesText(q.quota, 'group'))
        )
      : h('p', { class: 'gh-muted' }, 'No quota: members are limited by their own quotas only.'),
    members,
    h(
      'div',
      { class: 'gh-row gh-cohort-add' },
      addInput,
      add,
      h(
        'button',
        { type: 'button', class: 'gh-button', 'data-action': 'edit', onclick: () => edit(c) },
        q ? 'Edit quota' : 'Set a quota'
      )
    ),
    h('p', { class: 'gh-form-done', 'aria-live': 'polite' })
  );
  return card;
}

/** Show a sentence on a cohort's card after a reload. */
function flash(name: string, text: string): void {
  const el = document.querySelector(`.gh-cohort[data-cohort="${CSS.escape(name)}"] .gh-form-done`);
  if (el) {
    el.textContent = text;
  }
}

/** The create-or-update form, and `fill(c)`: the group's name and quota in it. */
function createForm(
  ctx: Ctx,
  reload: () => Promise<void>
): { form: HTMLFormElement; fill: (c: CohortItem) => void } {
  const name = h('input', {
    name: 'name',
    required: true,
    autocomplete: 'off',
    placeholder: 'cs101'
  }) as HTMLInputElement;
  const roster = h('textarea', {
    name: 'members',
    rows: 6,
    placeholder: 'ann\nbo\nchen'
  }) as HTMLTextAreaElement;
  const createUsers = h('input', {
    name: 'create_users',
    type: 'checkbox',
    checked: true
  }) as HTMLInputElement;
  const withQuota = h('input', { name: 'with_quota', type: 'checkbox' }) as HTMLInputElement;
  const num = (n: string, placeholder = 'no limit') =>
    h('input', { name: n, type: 'number', step: 'any', placeholder }) as HTMLInputElement;
  const maxUnits = num('max_units');
  const perUser = num('per_user_max_units');
  const gpuHours = num('gpu_hours');
  const credits = num('credits');
  const spotUnits = num('spot_max_units');
  const spotHours = num('spot_gpu_hours');
  const period = h(
    'select',
    { name: 'period' },
    ...['week', 'day', 'month'].map(p => h('option', { value: p }, p))
  ) as HTMLSelectElement;
  const quotaFields = h(
    'div',
    { class: 'gh-row' },
    field('Max GPU units', maxUnits, 'the whole group at once'),
    field('Per member', perUser, 'GPU units each'),
    field('GPU-hours per period', gpuHours),
    field('Credits per period', credits, "GPU-hours × the models' rates"),
    field('Period', period)
  );
  const spotFields = h(
    'div',
    { class: 'gh-row' },
    field('Spot GPUs at once', spotUnits, 'preemptible, apart from Max GPU units'),
    field('Spot GPU-hours per period', spotHours, 'apart from GPU-hours; credits pay for both')
  );
  const lending = cohortFields(n => num(n));
  const sync = () => {
    quotaFields.hidden = !withQuota.checked;
    spotFields.hidden = !withQuota.checked;
    lending.row.hidden = !withQuota.checked;
  };
  withQuota.addEventListener('change', sync);
  sync();
  const foot = formFoot('Create or update');
  const form = h(
    'form',
    { class: 'gh-form gh-cohort-form', 'aria-label': 'Create a cohort' },
    h(
      'div',
      { class: 'gh-row' },
      field('Group', name),
      field('Members', roster, 'one user name per line; members not listed stay')
    ),
    h(
      'div',
      { class: 'gh-row' },
      field('Create users the hub lacks', createUsers),
      field('Set the group quota', withQuota)
    ),
    quotaFields,
    spotFields,
    lending.row,
    h('div', { class: 'gh-row' }, foot.submit, foot.done),
    foot.errors
  ) as HTMLFormElement;
  onSubmit(form, foot, async () => {
    const group = name.value.trim();
    if (!group) {
      throw new FieldError('name', "give the group's name");
    }
    const body: Record<string, unknown> = {
      members: names(roster.value),
      create_users: createUsers.checked
    };
    if (withQuota.checked) {
      const shown = {
        max_units: numberOrNull(maxUnits),
        per_user_max_units: numberOrNull(perUser),
        gpu_hours: numberOrNull(gpuHours),
        credits: numberOrNull(credits),
        spot_max_units: numberOrNull(spotUnits),
        spot_gpu_hours: numberOrNull(spotHours),
        period: period.value,
        ...lending.read()
      };
      // the group's quota as it is (its shapes, profiles, priority...), with the fields
      // this form shows as they are in it; term dates go with a term only
      const current = await currentQuota(ctx, 'group', group);
      const term = period.value === 'term' ? {} : { term_start: null, term_end: null };
      body.quota = { ...current, ...shown, ...term };
    }
    const change = await ctx.api.put<CohortChange>(`/cohorts/${encodeURIComponent(group)}`, body);
    foot.done.textContent = said(change);
    roster.value = '';
    await reload();
  });
  const fill = (c: CohortItem) => {
    const q = c.quota?.quota ?? null;
    const str = (v: number | null | undefined) => (v === null || v === undefined ? '' : String(v));
    name.value = c.name;
    roster.value = '';
    withQuota.checked = true;
    maxUnits.value = str(q?.max_units);
    perUser.value = str(q?.per_user_max_units);
    gpuHours.value = str(q?.gpu_hours);
    credits.value = str(q?.credits);
    spotUnits.value = str(q?.spot_max_units);
    spotHours.value = str(q?.spot_gpu_hours);
    // a term (set on the Quotas page, with its dates) is kept as it is
    const periods = ['week', 'day', 'month', ...(q?.period === 'term' ? ['term'] : [])];
    period.replaceChildren(...periods.map(p => h('option', { value: p }, p)));
    period.value = q?.period ?? 'week';
    lending.fill(q);
    clearFoot(foot);
    sync();
    form.scrollIntoView({ block: 'nearest' });
    name.focus();
  };
  return { form, fill };
}

/** Without `GET /cohorts` (an older service): look one cohort up by name. */
function lookup(ctx: Ctx, list: HTMLElement, edit: (c: CohortItem) => void): HTMLElement {
  const name = h('input', {
    name: 'lookup',
    placeholder: 'group name',
    autocomplete: 'off'
  }) as HTMLInputElement;
  const out = h('div');
  const showIt = async (): Promise<void> => {
    const c = await ctx.api.get<CohortItem>(`/cohorts/${encodeURIComponent(name.value.trim())}`);
    out.replaceChildren(cohortCard(c, ctx, showIt, edit));
  };
  return h(
    'div',
    null,
    h(
      'p',
      { class: 'gh-muted' },
      'This gpuhub service cannot list groups (no GET /cohorts). Show one by its name:'
    ),
    h('div', { class: 'gh-row' }, name, button('Show', list, showIt)),
    out
  );
}

export const page: Page = async (root, ctx) => {
  const list = h('div', { class: 'gh-cohorts' });
  const summary = h('p', { class: 'gh-muted' });
  let fallback: HTMLElement | null = null;
  // the form is made below, once `reload` exists
  let edit: (c: CohortItem) => void = () => undefined;
  const reload = async (): Promise<void> => {
    try {
      const data = await ctx.api.get<{ cohorts: CohortItem[] }>('/cohorts');
      const cohorts = data.cohorts;
      const people = new Set(cohorts.flatMap(c => c.members)).size;
      const limited = cohorts.filter(c => c.quota).length;
      const units = cohorts.reduce((a, c) => a + (c.quota?.units_active ?? 0), 0);
      summary.textContent =
        `${cohorts.length} group${cohorts.length === 1 ? '' : 's'}, ${people} member${people === 1 ? '' : 's'} in all; ` +
        `${limited} with a group quota` +
        (limited ? `, holding ${fmtUnits(units)} now.` : '.');
      list.replaceChildren(
        ...(cohorts.length
          ? cohorts.map(c => cohortCard(c, ctx, reload, edit))
          : [empty('No groups yet: create one below.')])
      );
      clearError(root, 'load');
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) {
        fallback ??= lookup(ctx, list, edit);
        list.replaceChildren(fallback);
        return;
      }
      showError(root, e, 'load');
    }
  };
  const { form, fill } = createForm(ctx, reload);
  edit = fill;
  root.append(
    h('h1', null, 'Groups'),
    section('Groups and their members', summary, list),
    section(
      'Create a cohort',
      h(
        'p',
        { class: 'gh-muted' },
        'Creates the JupyterHub group if it is new, the users the hub lacks, adds them, and sets the group quota, in one step (like gpuhub cohort create).'
      ),
      form
    )
  );
  await reload();
};

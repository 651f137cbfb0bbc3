/**
 * Reservations (admins): devices kept for a group in a time window, once or weekly (lab
 * hours). Lists them with their state (`GET /reservations`), creates one
 * (`POST /reservations`) and deletes one (`DELETE /reservations/{id}`).
 */
import { Ctx, Page } from '../context';
import { button, clearError, empty, fmtWindow, h, section, showError, table, tag } from '../dom';
import { field, formFoot, onSubmit } from '../forms';
import { Pool, Reservation, Shape } from '../types';

/** "8 MIG 1g.10gb slices", "2 whole GPUs", "1 shared GPU". */
export function shapeText(shape: Shape, count: number): string {
  const what =
    shape.kind === 'mig'
      ? `MIG ${shape.profile} slice`
      : shape.kind === 'shared'
        ? 'shared GPU'
        : 'whole GPU';
  return `${count} ${what}${count === 1 ? '' : 's'}${shape.model ? ` (${shape.model})` : ''}`;
}

/** The current or next window in the reservation's zone: "Wed 2 Dec 14:00–16:00 UTC". */
function when(r: Reservation): string {
  const w = r.current ?? r.next ?? { start: r.start, end: r.end };
  return fmtWindow(w.start, w.end, r.timezone);
}

/** A `datetime-local` value of `t` in the browser's zone ("2026-12-08T14:00"). */
function localInput(t: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${t.getFullYear()}-${p(t.getMonth() + 1)}-${p(t.getDate())}T${p(t.getHours())}:${p(t.getMinutes())}`;
}

function createForm(ctx: Ctx, reload: () => Promise<void>): HTMLFormElement {
  const group = h('input', {
    name: 'group',
    required: true,
    autocomplete: 'off',
    list: 'gh-groups',
    placeholder: 'cs101'
  }) as HTMLInputElement;
  const groups = h('datalist', { id: 'gh-groups' });
  const kind = h(
    'select',
    { name: 'kind' },
    h('option', { value: 'gpu' }, 'Whole GPUs'),
    h('option', { value: 'mig' }, 'MIG slices'),
    h('option', { value: 'shared' }, 'Shared GPUs')
  ) as HTMLSelectElement;
  const profile = h('input', {
    name: 'profile',
    list: 'gh-profiles',
    placeholder: '1g.10gb',
    autocomplete: 'off'
  }) as HTMLInputElement;
  const profiles = h('datalist', { id: 'gh-profiles' });
  const model = h('input', {
    name: 'model',
    placeholder: 'any',
    autocomplete: 'off',
    list: 'gh-models'
  }) as HTMLInputElement;
  const models = h('datalist', { id: 'gh-models' });
  const count = h('input', {
    name: 'count',
    type: 'number',
    min: 1,
    step: 1,
    value: '1',
    required: true
  }) as HTMLInputElement;
  // next full hour, two hours long
  const t0 = new Date(Math.ceil(Date.now() / 3600000) * 3600000);
  const start = h('input', {
    name: 'start',
    type: 'datetime-local',
    required: true,
    value: localInput(t0)
  }) as HTMLInputElement;
  const end = h('input', {
    name: 'end',
    type: 'datetime-local',
    required: true,
    value: localInput(new Date(t0.getTime() + 2 * 3600000))
  }) as HTMLInputElement;
  const repeat = h(
    'select',
    { name: 'repeat' },
    h('option', { value: 'once' }, 'Once'),
    h('option', { value: 'weekly' }, 'Every week')
  ) as HTMLSelectElement;
  const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const zone = h('input', {
    name: 'timezone',
    placeholder: "the service's default",
    list: 'gh-zones',
    autocomplete: 'off'
  }) as HTMLInputElement;
  const zones = h(
    'datalist',
    { id: 'gh-zones' },
    ...[...new Set(['UTC', browserZone])].map(z => h('option', { value: z }))
  );
  const note = h('input', {
    name: 'note',
    maxlength: 500,
    placeholder: 'e.g. Lab 3, CS 101'
  }) as HTMLInputElement;
  const profileField = field('MIG profile', profile);
  const sync = () => {
    profileField.hidden = kind.value !== 'mig';
  };
  kind.addEventListener('change', sync);
  sync();

  // what the pool has, to offer as choices (best effort: the form works without)
  void ctx.api
    .get<Pool>('/pool')
    .then(pool => {
      const gpus = pool.nodes.flatMap(n => n.gpus);
      const seen = new Set(gpus.flatMap(g => (g.mig_instances ?? []).map(i => i.profile)));
      profiles.replaceChildren(...[...seen].sort().map(p => h('option', { value: p })));
      models.replaceChildren(
        ...[...new Set(gpus.map(g => g.model))].sort().map(m => h('option', { value: m }))
      );
    })
    .catch(() => undefined);
  void ctx.api
    .get<{ cohorts: { name: string }[] }>('/cohorts')
    .then(d => groups.replaceChildren(...d.cohorts.map(c => h('option', { value: c.name }))))
    .catch(() => undefined);

  const foot = formFoot('Reserve');
  const form = h(
    'form',
    { class: 'gh-form gh-reservation-form', 'aria-label': 'Reserve devices' },
    h(
      'div',
      { class: 'gh-row' },
      field('Group', group),
      field('What', kind),
      profileField,
      field('GPU model', model, 'optional'),
      field('How many', count)
    ),
    h(
      'div',
      { class: 'gh-row' },
      field('Start', start),
      field('End', end),
      field('Repeat', repeat),
      field('Time zone', zone, `start and end are wall times there; your browser's: ${browserZone}`)
    ),
    h('div', { class: 'gh-row' }, field('Note', note)),
    h('div', { class: 'gh-row' }, foot.submit, foot.done),
    foot.errors,
    groups,
    profiles,
    models,
    zones
  ) as HTMLFormElement;

  onSubmit(form, foot, async () => {
    // the reservation's `count` says how many: a GPU shape names none of its own
    const shape: Shape =
      kind.value === 'mig'
        ? { kind: 'mig', profile: profile.value.trim() }
        : ({ kind: kind.value } as Shape);
    if (model.value.trim()) {
      shape.model = model.value.trim();
    }
    const n = Number(count.value);
    const body: Record<string, unknown> = {
      group: group.value.trim(),
      shape,
      count: Number.isInteger(n) ? n : count.value,
      start: start.value,
      end: end.value,
      repeat: repeat.value
    };
    if (zone.value.trim()) {
      body.timezone = zone.value.trim();
    }
    if (note.value.trim()) {
      body.note = note.value.trim();
    }
    const r = await ctx.api.post<Reservation>('/reservations', body);
    foot.done.textContent = r.message;
    await reload();
  });
  return form;
}

export const page: Page = async (root, ctx) => {
  const list = h('div', { class: 'gh-reservations' });
  const reload = async (): Promise<void> => {
    try {
      const data = await ctx.api.get<{ reservations: Reservation[] }>('/reservations');
      const items = data.reservations;
      list.replaceChildren(
        items.length
          ? table(
              ['#', 'Group', 'Devices', 'Window (now or next)', 'State', 'Details', ''],
              items.map(r => [
                String(r.id),
                h('strong', null, r.group),
                h(
                  'span',
                  { title: r.devices.map(d => `${d.node}: ${d.name ?? d.uuid}`).join('\n') },
                  shapeText(r.shape, r.count)
                ),
                h(
                  'span',
                  null,
                  when(r),
                  h(
                    'div',
                    { class: 'gh-muted' },
                    r.repeat === 'weekly'
                      ? `every week, in ${r.timezone}`
                      : `once, in ${r.timezone}`
                  )
                ),
                tag(
                  r.state,
                  r.state === 'open' ? 'reserved' : r.state === 'ended' ? 'muted' : 'reserved-later'
                ),
                h(
                  'div',
                  { class: 'gh-reservation-message' },
                  r.message,
                  r.note ? h('div', { class: 'gh-muted' }, r.note) : null
                ),
                button(
                  'Delete',
                  list,
                  async () => {
                    const open =
                      r.state === 'open'
                        ? ' It is open now: its devices go back to everyone at once.'
                        : '';
                    if (
                      !window.confirm(
                        `Delete reservation ${r.id} (${shapeText(r.shape, r.count)} for ${r.group})?${open}`
                      )
                    ) {
                      return;
                    }
                    await ctx.api.delete(`/reservations/${r.id}`);
                    await reload();
                  },
                  { class: 'gh-button gh-danger', 'data-action': 'delete', 'data-id': r.id }
                )
              ])
            )
          : empty('No reservations.')
      );
      clearError(root, 'load');
    } catch (e) {
      showError(root, e, 'load');
    }
  };
  root.append(
    h('h1', null, 'Reservations'),
    section(
      'Reserved devices',
      h(
        'p',
        { class: 'gh-muted' },
        "During a window only the group's members get the reserved devices; outside it they serve everyone, but no other lease is placed on them that would still run when the next window opens."
      ),
      list
    ),
    section('Reserve devices for a group', createForm(ctx, reload))
  );
  await reload();
};

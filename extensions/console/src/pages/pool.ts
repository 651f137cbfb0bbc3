/**
 * The pool (admins): every node and its devices, who holds each (user, lease, group), the
 * holder's utilization or "idle 42 min", simulated devices marked, reserved ones marked
 * (GET /reservations, where the service has it), and a Release button per lease that asks
 * for a reason (DELETE /leases/{id}?reason=...). Devices held outside gpuhub (a Slurm job
 * gpuhub did not submit) name that holder, and a node that takes no new leases says why.
 */
import { Ctx, Page } from '../context';
import { autoRefresh, fmtNumber, fmtZoned, h, sameDay, section, tag } from '../dom';
import { activityTag, endButton } from '../leases';
import { Holder, Pool, PoolGpu, Reservation } from '../types';

/** Reservations by device UUID (none when the service has no reservations yet). */
async function reservations(ctx: Ctx): Promise<Map<string, Reservation>> {
  const byDevice = new Map<string, Reservation>();
  try {
    const answer = await ctx.api.get<{ reservations: Reservation[] }>('/reservations');
    for (const r of answer.reservations) {
      if (r.state !== 'ended') {
        for (const d of r.devices) {
          byDevice.set(d.uuid, r);
        }
      }
    }
  } catch {
    // fail soft: the pool is worth showing without them
  }
  return byDevice;
}

/** "reserved for chem from Tue 15 Dec 14:00 UTC", "reserved for chem now, until 16:00 UTC":
 * times on the reservation's own clock, as the Reservations page writes them. */
function reservedTag(r: Reservation | undefined): HTMLElement | null {
  if (!r) {
    return null;
  }
  const now = new Date().toISOString();
  const until = r.current
    ? `now, until ${fmtZoned(r.current.end, r.timezone, { day: !sameDay(now, r.current.end, r.timezone), zone: true })}`
    : r.next
      ? `from ${fmtZoned(r.next.start, r.timezone, { zone: true })}`
      : '';
  const el = tag(
    `reserved for ${r.group}${until ? ' ' + until : ''}`,
    r.state === 'open' ? 'reserved' : 'reserved-later'
  );
  el.title = r.message;
  return el;
}

/** How much of each kind of device is free: "2 of 4 GPUs, 6 of 7 MIG slices and 3 of 4
 * shared seats free" (only the kinds the pool has; nothing on a node that takes no new
 * leases, nothing held outside gpuhub). */
export function freeText(pool: Pool): string {
  const count = { gpu: [0, 0], mig: [0, 0], shared: [0, 0] };
  // on a node that takes no new leases (drained, down) nothing counts as free
  for (const [node, gpu] of pool.nodes.flatMap(n => n.gpus.map(g => [n, g] as const))) {
    const outside = gpu.held_outside !== null || !node.usable;
    if (gpu.mig_instances) {
      count.mig[0] += outside
        ? 0
        : gpu.mig_instances.filter(m => !m.holder && !m.held_outside).length;
      count.mig[1] += gpu.mig_instances.length;
    } else if (gpu.mode === 'shared') {
      const held = (gpu.holders ?? []).filter(Boolean).length;
      count.shared[0] += outside ? 0 : Math.max(0, gpu.shares - held);
      count.shared[1] += gpu.shares;
    } else {
      count.gpu[0] += outside || (gpu.holders ?? []).some(Boolean) ? 0 : 1;
      count.gpu[1] += 1;
    }
  }
  const nouns: [keyof typeof count, string, string][] = [
    ['gpu', 'GPU', 'GPUs'],
    ['mig', 'MIG slice', 'MIG slices'],
    ['shared', 'shared seat', 'shared seats']
  ];
  const parts = nouns
    .filter(([k]) => count[k][1] > 0)
    .map(([k, one, many]) => `${count[k][0]} of ${count[k][1]} ${count[k][1] === 1 ? one : many}`);
  if (!parts.length) {
    return 'No GPUs in the pool';
  }
  const list =
    parts.length > 1 ? `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1]}` : parts[0];
  return `${list} free`;
}

/** A device that work outside gpuhub holds: "held by Slurm job 42 (outside gpuhub)". */
function outsideLine(label: string, who: string): HTMLElement {
  return h(
    'div',
    { class: 'gh-slot gh-outside' },
    h('span', { class: 'gh-slot-name' }, label),
    h('span', { class: 'gh-warn' }, `held by ${who}`)
  );
}

function holderLine(
  ctx: Ctx,
  label: string,
  holder: Holder | null,
  where: HTMLElement,
  redraw: () => Promise<void>,
  extra: HTMLElement | null = null
): HTMLElement {
  if (!holder) {
    return h(
      'div',
      { class: 'gh-slot gh-free' },
      h('span', { class: 'gh-slot-name' }, label),
      h('span', { class: 'gh-muted' }, 'free'),
      extra
    );
  }
  if (holder.lease === null) {
    return h(
      'div',
      { class: 'gh-slot' },
      h('span', { class: 'gh-slot-name' }, label),
      h('span', { class: 'gh-muted' }, 'held (kept out of use)'),
      extra
    );
  }
  return h(
    'div',
    { class: 'gh-slot gh-held', 'data-lease': holder.lease, 'data-user': holder.user },
    h('span', { class: 'gh-slot-name' }, label),
    h(
      'span',
      { class: 'gh-holder' },
      h('strong', null, holder.user ?? '?'),
      ` · lease #${holder.lease}`,
      holder.group ? ` · ${holder.group}` : ''
    ),
    activityTag(holder.activity),
    extra,
    endButton(ctx, { id: holder.lease, user: holder.user ?? '', status: 'active' }, where, redraw)
  );
}

function gpuCard(
  ctx: Ctx,
  gpu: PoolGpu,
  reserved: Map<string, Reservation>,
  where: HTMLElement,
  redraw: () => Promise<void>,
  usable = true
): HTMLElement {
  const mode =
    gpu.mode === 'mig' ? 'MIG' : gpu.mode === 'shared' ? `shared by ${gpu.shares}` : null;
  const slots: HTMLElement[] = [];
  // held devices one per line; free ones of a kind (not reserved) counted on one line
  const free = new Map<string, number>();
  const addFree = (label: string) => free.set(label, (free.get(label) ?? 0) + 1);
  if (gpu.held_outside !== null) {
    slots.push(outsideLine(gpu.mode === 'mig' ? 'all slices' : 'whole GPU', gpu.held_outside));
  }
  if (gpu.mig_instances) {
    for (const m of gpu.mig_instances) {
      const r = reservedTag(reserved.get(m.uuid));
      if (m.held_outside && !m.holder) {
        slots.push(outsideLine(m.profile, m.held_outside));
        continue;
      }
      if (gpu.held_outside !== null && !m.holder) {
        continue;
      }
      if (!m.holder && !r) {
        addFree(m.profile);
        continue;
      }
      slots.push(holderLine(ctx, m.profile, m.holder, where, redraw, r));
    }
  } else {
    const holders = gpu.holders ?? [];
    const seats = gpu.mode === 'shared' ? Math.max(gpu.shares, holders.length) : 1;
    for (let i = 0; i < seats; i++) {
      const label = gpu.mode === 'shared' ? 'seat' : 'whole GPU';
      if (gpu.held_outside !== null && !holders[i]) {
        continue;
      }
      if (holders[i]) {
        slots.push(
          holderLine(
            ctx,
            gpu.mode === 'shared' ? `seat ${i + 1}` : label,
            holders[i],
            where,
            redraw
          )
        );
      } else {
        addFree(label);
      }
    }
  }
  for (const [label, n] of free) {
    const what = n > 1 ? `${n} × ${label}${label === 'seat' ? 's' : ''}` : label;
    slots.push(
      h(
        'div',
        { class: 'gh-slot gh-free' },
        h('span', { class: 'gh-slot-name' }, what),
        h('span', { class: 'gh-muted' }, usable ? 'free' : 'unused (no new leases here)')
      )
    );
  }
  return h(
    'div',
    { class: `gh-gpu gh-state-${gpu.state}`, 'data-uuid': gpu.uuid },
    h(
      'div',
      { class: 'gh-gpu-head' },
      h('strong', null, `GPU ${gpu.index}`),
      h('span', null, `${gpu.model} · ${Math.round(gpu.memory_mb / 1024)} GB`),
      mode ? tag(mode, 'mode') : null,
      gpu.simulated ? tag('simulated', 'sim') : null,
      reservedTag(reserved.get(gpu.uuid))
    ),
    ...slots
  );
}

export const page: Page = (root, ctx) => {
  const summary = h('p', { class: 'gh-lead' });
  const nodes = h('div');
  root.append(h('h1', null, 'Pool'), summary, nodes);
  const draw = async (): Promise<void> => {
    const [pool, reserved] = await Promise.all([ctx.api.get<Pool>('/pool'), reservations(ctx)]);
    summary.title = `${fmtNumber(pool.units_free)} of ${fmtNumber(pool.units_total)} GPU units free`;
    summary.replaceChildren(
      h('span', { class: 'gh-pool-free' }, freeText(pool)),
      ` · ${pool.queue_length} request${pool.queue_length === 1 ? '' : 's'} queued `,
      pool.simulated ? tag('simulated pool', 'sim') : ''
    );
    nodes.replaceChildren(
      ...pool.nodes.map(n =>
        section(
          `Node ${n.name}`,
          n.simulated
            ? h('p', { class: 'gh-muted gh-small' }, 'Simulated devices: no real GPUs behind them.')
            : null,
          n.usable
            ? null
            : h(
                'p',
                { class: 'gh-warn gh-node-unusable' },
                `Takes no new leases${n.state ? ` (${n.state})` : ''}; its running leases stay.`
              ),
          h(
            'div',
            { class: 'gh-grid' },
            ...n.gpus.map(g => gpuCard(ctx, g, reserved, root, draw, n.usable))
          )
        )
      )
    );
  };
  autoRefresh(root, draw);
};

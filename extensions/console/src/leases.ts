/** How leases read on the pages: their shape, devices, activity, and an end-with-reason form. */
import { ApiError } from './api';
import { Ctx } from './context';
import { clearError, fmtMinutes, fmtUnits, h, showError, tag } from './dom';
import { Activity, Device, HolderActivity, Lease, Shape } from './types';

/**
 * A shape in a few words: "1 GPU", "2 H100 GPUs", "MIG 1g.10gb slice", "shared GPU seat";
 * on several nodes "2 nodes × 2 GPUs".
 */
export function shapeText(shape: Shape): string {
  const model = shape.model ? `${shape.model} ` : '';
  if (shape.kind === 'mig') {
    return `MIG ${shape.profile} slice${model ? ' (' + model.trim() + ')' : ''}`;
  }
  if (shape.kind === 'shared') {
    return `shared ${model}GPU seat`;
  }
  const n = shape.count ?? 1;
  const gpus = `${n} ${model}GPU${n === 1 ? '' : 's'}`;
  const nodes = shape.nodes ?? 1;
  return nodes > 1 ? `${nodes} nodes × ${gpus}` : gpus;
}

/** A lease's or job's node; a multi-node one's nodes, which the API joins with commas,
 * spaced: "gpu1, gpu2" ("—" before it is granted). */
export function nodesText(node: string | null | undefined): string {
  return node ? node.split(',').join(', ') : '—';
}

/** A shape with its units where they are not plain: "1 GPU", "MIG 1g.5gb slice (1/7 GPU)". */
export function shapeWithUnits(shape: Shape, units: number): string {
  const whole = shape.kind === 'gpu' && units === (shape.count ?? 1) * (shape.nodes ?? 1);
  return whole ? shapeText(shape) : `${shapeText(shape)} (${fmtUnits(units)})`;
}

/**
 * A device for people: "GPU 0 · H100", "GPU 0 slice 1g.10gb #2", "GPU 1 seat 2/4"; a
 * multi-node lease's devices name their node: "gpu2 · GPU 0 · H100".
 */
export function deviceText(d: Device): string {
  if (d.node) {
    return `${d.node} · ${deviceText({ ...d, node: undefined })}`;
  }
  if (d.profile) {
    return `GPU ${d.index} · ${d.profile}${d.mig_index !== undefined ? ' #' + d.mig_index : ''}`;
  }
  if (d.shared_by) {
    return `GPU ${d.index} · seat ${d.slot + 1}/${d.shared_by}`;
  }
  return `GPU ${d.index} · ${d.model}`;
}

/** Activity in a few words, as a tag: "73% busy", "idle 42 min", "no report yet". */
export function activityTag(activity: Activity | HolderActivity | null | undefined): HTMLElement {
  if (!activity) {
    return tag('no report yet', 'muted');
  }
  if (activity.idle_s !== null && activity.idle_s >= 60) {
    return tag(`idle ${fmtMinutes(activity.idle_s / 60)}`, 'idle');
  }
  if (activity.utilization_mean_pct !== null) {
    const pct = Math.round(activity.utilization_mean_pct);
    return tag(`${pct}% busy`, pct > 0 ? 'busy' : 'idle');
  }
  if (activity.idle_s === null) {
    return tag('not busy yet', 'idle');
  }
  return tag('busy', 'busy');
}

/**
 * A button that ends a lease (admins: with a reason): it opens a small form in place,
 * and "Release" sends `DELETE /leases/{id}?reason=...`; `done` runs after. A refusal is a
 * banner in `where`, taken down when the lease is then released.
 */
export function endButton(
  ctx: Ctx,
  lease: Pick<Lease, 'id' | 'user' | 'status'>,
  where: HTMLElement,
  done: () => Promise<void> | void
): HTMLElement {
  const verb = lease.status === 'queued' ? 'Cancel' : 'Release';
  const key = `end ${lease.id}`;
  const box = h('span', { class: 'gh-end', 'data-lease': lease.id });
  const open = h(
    'button',
    { type: 'button', class: 'gh-button gh-danger', 'data-action': 'end' },
    verb
  );
  box.append(open);
  open.addEventListener('click', () => {
    const reason = h('input', {
      type: 'text',
      name: 'reason',
      maxlength: 200,
      placeholder: `why (kept in the ledger)`,
      'aria-label': `Reason to ${verb.toLowerCase()} lease ${lease.id}`
    }) as HTMLInputElement;
    const confirm = h(
      'button',
      { type: 'submit', class: 'gh-button gh-danger' },
      `${verb} #${lease.id}`
    );
    const back = h('button', { type: 'button', class: 'gh-button' }, 'Keep');
    const form = h('form', { class: 'gh-end-form' }, reason, confirm, back) as HTMLFormElement;
    back.addEventListener('click', () => {
      clearError(where, key); // kept: its refusal is moot
      form.replaceWith(open);
    });
    form.addEventListener('submit', async ev => {
      ev.preventDefault();
      const text = reason.value.trim();
      if (ctx.admin && lease.user !== ctx.user && !text) {
        showError(
          where,
          new ApiError(
            400,
            `Give a reason to ${verb.toLowerCase()} ${lease.user}'s lease ${lease.id}: it is kept in the ledger and shown to them.`,
            'reason'
          ),
          key
        );
        reason.focus();
        return;
      }
      (confirm as HTMLButtonElement).disabled = true;
      try {
        await ctx.api.delete(`/leases/${lease.id}`, { reason: text || undefined });
        clearError(where, key);
        await done();
      } catch (e) {
        showError(where, e, key);
        (confirm as HTMLButtonElement).disabled = false;
      }
    });
    open.replaceWith(form);
    reason.focus();
  });
  return box;
}

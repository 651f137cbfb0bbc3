/**
 * The queue (admins): every waiting request in order, with why it waits, when it may be
 * granted, what is free instead, and Cancel (with a reason). From GET /queue.
 */
import { Page } from '../context';
import { autoRefresh, empty, fmtAgo, h, section, table, tag } from '../dom';
import { endButton, shapeWithUnits } from '../leases';
import { Lease } from '../types';

export const page: Page = (root, ctx) => {
  const summary = h('p', { class: 'gh-lead' });
  const list = h('div');
  root.append(h('h1', null, 'Queue'), summary, section('Waiting requests', list));
  const draw = async (): Promise<void> => {
    const q = await ctx.api.get<{ length: number; queue: Lease[] }>('/queue');
    summary.textContent = q.length
      ? `${q.length} request${q.length === 1 ? '' : 's'} waiting, in the order they are served.`
      : '';
    list.replaceChildren(
      q.length
        ? table(
            ['#', 'Who', 'What', 'Waiting', 'Why', 'When', 'Free now', ''],
            q.queue.map(x => [
              String(x.position ?? ''),
              h(
                'span',
                null,
                h('strong', null, x.user ?? '?'),
                x.group ? h('div', { class: 'gh-muted gh-small' }, `group ${x.group}`) : null
              ),
              h(
                'span',
                null,
                shapeWithUnits(x.shape, x.units),
                h(
                  'div',
                  { class: 'gh-muted gh-small' },
                  `lease #${x.id}${x.priority ? ' · priority ' + x.priority : ''}`
                )
              ),
              fmtAgo(x.requested_at),
              x.waiting
                ? h(
                    'span',
                    { class: 'gh-reason' },
                    tag(x.waiting.reason.replace('_', ' '), 'queue'),
                    ' ',
                    x.waiting.message
                  )
                : '—',
              x.waiting?.estimate.message ?? '—',
              x.waiting?.alternatives.length
                ? x.waiting.alternatives.map(a => a.message).join('; ')
                : '—',
              x.id !== null ? endButton(ctx, x, root, draw) : ''
            ])
          )
        : empty('The queue is empty: every request has been granted.')
    );
  };
  autoRefresh(root, draw);
};

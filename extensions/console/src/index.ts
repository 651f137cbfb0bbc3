/**
 * gpuhub's web console: reads who is looking from the shell's data-* attributes (written
 * by the service, gpuhub/service/console.py), draws the navigation (admin pages only for
 * admins) and the page named by data-page.
 */
import { Api } from './api';
import { Ctx, Page } from './context';
import { h } from './dom';
import { page as groups } from './pages/groups';
import { page as me } from './pages/me';
import { page as pool } from './pages/pool';
import { page as queue } from './pages/queue';
import { page as quotas } from './pages/quotas';
import { page as reservations } from './pages/reservations';
import { page as statements } from './pages/statements';
import { page as usage } from './pages/usage';

/** Every page by its data-page name. */
export const PAGES: Record<string, Page> = {
  me,
  pool,
  queue,
  usage,
  quotas,
  groups,
  reservations,
  statements
};

/** The navigation: [data-page name, title, path under the service prefix, admins only]. */
const NAV: [string, string, string, boolean][] = [
  ['me', 'My GPUs', '', false],
  ['pool', 'Pool', 'console/pool', true],
  ['queue', 'Queue', 'console/queue', true],
  ['usage', 'Usage', 'console/usage', true],
  ['statements', 'Statements', 'console/statements', false],
  ['quotas', 'Quotas', 'console/quotas', true],
  ['groups', 'Groups', 'console/groups', true],
  ['reservations', 'Reservations', 'console/reservations', true]
];

function nav(ctx: Ctx, current: string): HTMLElement {
  const links = NAV.filter(([, , , admin]) => ctx.admin || !admin).map(([name, title, path]) =>
    h(
      'a',
      {
        href: ctx.base + path,
        class: name === current ? 'active' : null,
        'aria-current': name === current ? 'page' : null
      },
      title
    )
  );
  return h(
    'header',
    { class: 'gh-header' },
    h('a', { class: 'gh-brand', href: ctx.base }, 'gpuhub'),
    h('nav', { class: 'gh-nav', 'aria-label': 'gpuhub console' }, ...links),
    h(
      'span',
      { class: 'gh-who' },
      h('span', { class: 'gh-user' }, ctx.user),
      ctx.admin ? h('span', { class: 'gh-tag' }, 'admin') : null,
      h('a', { href: ctx.hub + 'home' }, 'Hub')
    )
  );
}

/** Draw the console into the shell element. */
export async function start(shell: HTMLElement): Promise<void> {
  const d = shell.dataset;
  const ctx: Ctx = {
    api: new Api(d.api ?? ''),
    user: d.user ?? '',
    admin: d.admin === 'true',
    base: d.base ?? '/',
    hub: d.hub ?? '/hub/'
  };
  const name = d.page ?? 'me';
  const main = h('main', { class: 'gh-main', id: 'gh-main' });
  shell.replaceChildren(nav(ctx, name), main);
  const page = PAGES[name];
  if (!page) {
    main.append(h('p', { class: 'gh-error' }, `no page ${name}`));
    return;
  }
  await page(main, ctx);
}

const shell = document.getElementById('gpuhub-console');
if (shell) {
  void start(shell);
}

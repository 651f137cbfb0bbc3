/** Small DOM helpers and formatting for people, shared by every page. */
import { ApiError } from './api';

/** What `h` accepts as children: nodes, text, and nothing (null, undefined, false). */
export type Child = Node | string | number | null | undefined | false | Child[];

function append(el: HTMLElement, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) {
      continue;
    }
    if (Array.isArray(c)) {
      append(el, c);
    } else {
      el.append(c instanceof Node ? c : String(c));
    }
  }
}

/**
 * An element: `attrs` are attributes ("class", "title", "data-x", ...), event handlers
 * ("onclick": a function), properties of form fields ("value", "checked", "disabled");
 * null, undefined and false leave an attribute out.
 */
export function h(tag: string, attrs?: Record<string, any> | null, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === null || v === undefined || v === false) {
      continue;
    }
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'selected') {
      (el as any)[k] = v;
    } else if (k === 'style') {
      el.style.cssText = String(v); // CSSOM: allowed by the console's style-src 'self'
    } else if (k === 'class') {
      el.className = String(v);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

/** A titled section of a page. */
export function section(title: string, ...children: Child[]): HTMLElement {
  return h('section', { class: 'gh-section' }, h('h2', null, title), ...children);
}

/** A table with a header row; cells are nodes or text. */
export function table(headers: string[], rows: (Node | string)[][]): HTMLTableElement {
  return h(
    'table',
    { class: 'gh-table' },
    h('thead', null, h('tr', null, ...headers.map(x => h('th', { scope: 'col' }, x)))),
    h('tbody', null, ...rows.map(r => h('tr', null, ...r.map(c => h('td', null, c)))))
  ) as HTMLTableElement;
}

/** A sentence in place of the list when there is nothing to show. */
export function empty(text: string): HTMLElement {
  return h('p', { class: 'gh-empty' }, text);
}

/** Show an error as a banner at the top of `where` (the service's sentence), replacing
 * an earlier one there. */
export function showError(where: HTMLElement, err: unknown): void {
  let text: string;
  if (err instanceof ApiError) {
    text =
      err.status === 401
        ? 'Your login has expired (or you logged out): reload the page to log in again.'
        : err.status === 403
          ? `Not allowed: ${err.message}`
          : err.message;
  } else if (err instanceof Error) {
    text = err.message;
  } else {
    text = String(err);
  }
  where.querySelector(':scope > .gh-error')?.remove();
  const banner = h(
    'div',
    { class: 'gh-error', role: 'alert' },
    h('span', null, text),
    h('button', { class: 'gh-link', type: 'button', 'aria-label': 'Dismiss', onclick: () => banner.remove() }, '×')
  );
  where.prepend(banner);
}

/** GPU-hours for people: "0.4", "20", "1.25". */
export function fmtHours(hours: number): string {
  if (hours === Math.trunc(hours)) {
    return String(hours);
  }
  return hours.toFixed(2).replace(/0+$/, '').replace(/\.$/, '');
}

/** A date and time in the browser's zone, e.g. "Dec 1, 14:05"; "—" for none. */
export function fmtTime(iso: string | null | undefined): string {
  if (!iso) {
    return '—';
  }
  const t = new Date(iso);
  if (isNaN(t.getTime())) {
    return iso;
  }
  const now = new Date();
  const opts: Intl.DateTimeFormatOptions = {
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    timeZoneName: 'short' // the browser's zone, said (the service's sentences say UTC)
  };
  if (t.getFullYear() !== now.getFullYear()) {
    opts.year = 'numeric';
  }
  return t.toLocaleString(undefined, opts);
}

/** A duration in minutes for people: "42 min", "3 h 5 min", "2 d 4 h". */
export function fmtMinutes(minutes: number): string {
  const m = Math.max(0, Math.round(minutes));
  if (m < 60) {
    return `${m} min`;
  }
  const hours = Math.floor(m / 60);
  if (hours < 48) {
    return m % 60 ? `${hours} h ${m % 60} min` : `${hours} h`;
  }
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** How long ago: "just now", "5 min ago", "3 h 2 min ago"; "—" for none. */
export function fmtAgo(iso: string | null | undefined): string {
  if (!iso) {
    return '—';
  }
  const t = new Date(iso).getTime();
  if (isNaN(t)) {
    return iso;
  }
  const minutes = (Date.now() - t) / 60000;
  if (minutes < 1) {
    return minutes < -1 ? `in ${fmtMinutes(-minutes)}` : 'just now';
  }
  return `${fmtMinutes(minutes)} ago`;
}

/** GPU units as a number for people: "2", "0.5", and fractions where decimals would be
 * rounded: "1/7", "1 3/7" (as the CLI shows them). */
export function fmtNumber(units: number): string {
  if (Math.round(units * 100) / 100 === units) {
    return String(units);
  }
  for (let d = 2; d <= 64; d++) {
    const n = Math.round(units * d);
    if (Math.abs(n / d - units) < 1e-6) {
      const whole = Math.floor(n / d);
      const rest = n - whole * d;
      return whole ? `${whole} ${rest}/${d}` : `${rest}/${d}`;
    }
  }
  return units.toFixed(2).replace(/0+$/, '').replace(/\.$/, '');
}

/** GPU units with their noun: "1/7 GPU", "1 GPU", "2 GPUs". */
export function fmtUnits(units: number): string {
  return `${fmtNumber(units)} GPU${units > 1 || units === 0 ? 's' : ''}`;
}

/** A bar (0..1, clipped) with a label, e.g. for quotas; "over" colours it as exhausted. */
export function bar(fraction: number, label: string, title?: string): HTMLElement {
  const f = Math.max(0, Math.min(1, fraction));
  const level = f >= 1 ? 'full' : f >= 0.8 ? 'high' : 'ok';
  return h(
    'div',
    { class: 'gh-bar', title: title ?? label, role: 'meter', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': Math.round(f * 100), 'aria-label': label },
    h('div', { class: `gh-bar-fill gh-bar-${level}`, style: `width: ${(f * 100).toFixed(1)}%` }),
    h('span', { class: 'gh-bar-label' }, label)
  );
}

/** A small coloured tag: "simulated", "reserved", "idle 42 min". */
export function tag(text: string, kind = ''): HTMLElement {
  return h('span', { class: `gh-tag ${kind ? 'gh-tag-' + kind : ''}`.trim() }, text);
}

/** Run `action` with `control` disabled meanwhile (no second click while a request is
 * under way); its error becomes a banner in `where`. */
export async function whileDisabled(
  control: HTMLButtonElement,
  where: HTMLElement,
  action: () => Promise<unknown> | unknown
): Promise<void> {
  control.disabled = true;
  try {
    await action();
  } catch (e) {
    showError(where, e);
  } finally {
    control.disabled = false;
  }
}

/** A button that runs `action`, disabled meanwhile; errors become a banner in `where`. */
export function button(
  label: string,
  where: HTMLElement,
  action: () => Promise<unknown> | unknown,
  attrs: Record<string, any> = {}
): HTMLButtonElement {
  const b = h('button', { type: 'button', class: 'gh-button', ...attrs }, label) as HTMLButtonElement;
  b.addEventListener('click', () => whileDisabled(b, where, action));
  return b;
}

/**
 * Run `draw` now and every `seconds` while the page is visible (paused in hidden tabs,
 * once more on return; skipped while an input in `where` has the focus, or an element of
 * class gh-keep-open or an end-lease form is there); its errors become a banner in
 * `where`. Returns a stop function.
 */
export function autoRefresh(where: HTMLElement, draw: () => Promise<void>, seconds = 10): () => void {
  let timer: number | undefined;
  let running = false;
  const run = async () => {
    // not while someone is typing or has a form open: a redraw would throw it away
    const active = document.activeElement;
    const typing = active !== null && where.contains(active) && active.matches('input, select, textarea');
    if (running || typing || where.querySelector('.gh-end-form, .gh-keep-open')) {
      return;
    }
    running = true;
    try {
      await draw();
      where.querySelector(':scope > .gh-error')?.remove();
    } catch (e) {
      showError(where, e);
    } finally {
      running = false;
    }
  };
  const schedule = () => {
    window.clearInterval(timer);
    timer = document.hidden ? undefined : window.setInterval(run, seconds * 1000);
  };
  const onVisibility = () => {
    schedule();
    if (!document.hidden) {
      void run();
    }
  };
  document.addEventListener('visibilitychange', onVisibility);
  schedule();
  void run();
  return () => {
    window.clearInterval(timer);
    document.removeEventListener('visibilitychange', onVisibility);
  };
}

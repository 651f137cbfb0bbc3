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
export function h(
  tag: string,
  attrs?: Record<string, any> | null,
  ...children: Child[]
): HTMLElement {
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

/** An error in a sentence for people: the service's own, or what a 401 or 403 means. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) {
    return err.status === 401
      ? 'Your login has expired (or you logged out): reload the page to log in again.'
      : err.status === 403
        ? `Not allowed: ${err.message}`
        : err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * Show an error as a banner at the top of `where`, replacing an earlier one there. `key`
 * names what failed (an action, "refresh", "load"): {@link clearError} with the same key
 * takes it down once that succeeds, and leaves the banners of other failures up.
 */
export function showError(where: HTMLElement, err: unknown, key = ''): HTMLElement {
  where.querySelector(':scope > .gh-error')?.remove();
  const banner = h(
    'div',
    { class: 'gh-error', role: 'alert', 'data-error-of': key },
    h('span', null, errorText(err)),
    h(
      'button',
      { class: 'gh-link', type: 'button', 'aria-label': 'Dismiss', onclick: () => banner.remove() },
      '×'
    )
  );
  where.prepend(banner);
  return banner;
}

/** Take down the banner of `where` that `key` put up (any banner when `key` is left out). */
export function clearError(where: HTMLElement, key?: string): void {
  const banner = where.querySelector<HTMLElement>(':scope > .gh-error');
  if (banner && (key === undefined || banner.dataset.errorOf === key)) {
    banner.remove();
  }
}

/**
 * A quantity for people (GPU-hours, GPU units, chart values), by the console's one
 * rounding rule: at most two decimals with trailing zeros dropped ("0.4", "20", "1.25"),
 * and "< 0.01" for a value that is not zero but rounds to it, so that a bar that shows
 * something never reads "0".
 */
export function fmtAmount(x: number): string {
  if (!Number.isFinite(x)) {
    return String(x);
  }
  const r = Math.round(Math.abs(x) * 100) / 100;
  if (r === 0) {
    return x === 0 ? '0' : x > 0 ? '< 0.01' : '> -0.01';
  }
  return (x < 0 ? '-' : '') + r.toFixed(2).replace(/\.?0+$/, '');
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

/** A time of day in the browser's zone on a 24-hour clock, "14:05", when it is today;
 * else {@link fmtTime} ("Dec 2, 14:05 UTC"). "—" for none. */
export function fmtClock(iso: string | null | undefined): string {
  if (!iso) {
    return '—';
  }
  const t = new Date(iso);
  if (isNaN(t.getTime())) {
    return iso;
  }
  if (t.toDateString() !== new Date().toDateString()) {
    return fmtTime(iso);
  }
  return t.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
}

/** The parts of `t` on the wall clock of `zone` (weekday, day, month, year, hour, minute). */
function wallParts(t: Date, zone: string): Record<string, string> {
  const f = new Intl.DateTimeFormat('en-US', {
    timeZone: zone,
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    year: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23'
  });
  return Object.fromEntries(f.formatToParts(t).map(p => [p.type, p.value]));
}

/**
 * A time on the wall clock of `zone` (an IANA name), the one way the console writes
 * reservation times: "Tue 15 Dec 14:00", the year added when it is not this year's, the
 * date left out with `day: false` ("14:00"), the zone's name added with `zone: true`
 * ("Tue 15 Dec 14:00 UTC"). A zone the browser does not know: {@link fmtTime}.
 */
export function fmtZoned(
  iso: string,
  zone: string,
  { day = true, zone: named = false }: { day?: boolean; zone?: boolean } = {}
): string {
  const t = new Date(iso);
  if (isNaN(t.getTime())) {
    return iso;
  }
  let p: Record<string, string>;
  let thisYear: string;
  try {
    p = wallParts(t, zone);
    thisYear = wallParts(new Date(), zone).year;
  } catch {
    return fmtTime(iso);
  }
  const date = `${p.weekday} ${p.day} ${p.month}${p.year === thisYear ? '' : ' ' + p.year}`;
  return [day ? date : '', `${p.hour}:${p.minute}`, named ? zone : ''].filter(Boolean).join(' ');
}

/** Whether two times fall on the same day on the wall clock of `zone`. */
export function sameDay(a: string, b: string, zone: string): boolean {
  try {
    const [x, y] = [wallParts(new Date(a), zone), wallParts(new Date(b), zone)];
    return x.year === y.year && x.month === y.month && x.day === y.day;
  } catch {
    return new Date(a).toDateString() === new Date(b).toDateString();
  }
}

/** A window on the wall clock of `zone`: "Tue 15 Dec 14:00–16:00 UTC", or with both dates
 * when it ends on another day ("Tue 15 Dec 22:00–Wed 16 Dec 02:00 UTC"). */
export function fmtWindow(start: string, end: string, zone: string): string {
  const to = fmtZoned(end, zone, { day: !sameDay(start, end, zone), zone: true });
  return `${fmtZoned(start, zone)}–${to}`;
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

/** A duration in seconds for people: "45 s", "2 min", "1 h 30 min". */
export function fmtSeconds(seconds: number): string {
  return seconds < 60 ? `${Math.max(0, Math.round(seconds))} s` : fmtMinutes(seconds / 60);
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
 * rounded: "1/7", "1 3/7" (as the CLI shows them); else {@link fmtAmount}. */
export function fmtNumber(units: number): string {
  if (Math.round(units * 100) / 100 === units) {
    return fmtAmount(units);
  }
  for (let d = 2; d <= 64; d++) {
    const n = Math.round(units * d);
    if (Math.abs(n / d - units) < 1e-6) {
      const whole = Math.floor(n / d);
      const rest = n - whole * d;
      return whole ? `${whole} ${rest}/${d}` : `${rest}/${d}`;
    }
  }
  return fmtAmount(units);
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
    {
      class: 'gh-bar',
      title: title ?? label,
      role: 'meter',
      'aria-valuemin': 0,
      'aria-valuemax': 100,
      'aria-valuenow': Math.round(f * 100),
      'aria-label': label
    },
    h('div', { class: `gh-bar-fill gh-bar-${level}`, style: `width: ${(f * 100).toFixed(1)}%` }),
    h('span', { class: 'gh-bar-label' }, label)
  );
}

/** A small coloured tag: "simulated", "reserved", "idle 42 min". */
export function tag(text: string, kind = ''): HTMLElement {
  return h('span', { class: `gh-tag ${kind ? 'gh-tag-' + kind : ''}`.trim() }, text);
}

/** Run `action` with `control` disabled meanwhile (no second click while a request is
 * under way); its error becomes a banner in `where` under `key`, and a success takes the
 * banner of an earlier failure of the same action down. */
export async function whileDisabled(
  control: HTMLButtonElement,
  where: HTMLElement,
  action: () => Promise<unknown> | unknown,
  key = ''
): Promise<void> {
  control.disabled = true;
  try {
    await action();
    clearError(where, key);
  } catch (e) {
    showError(where, e, key);
  } finally {
    control.disabled = false;
  }
}

/** A button that runs `action`, disabled meanwhile; errors become a banner in `where`
 * (the action is known by its label and data-* attributes: its success clears its own). */
export function button(
  label: string,
  where: HTMLElement,
  action: () => Promise<unknown> | unknown,
  attrs: Record<string, any> = {}
): HTMLButtonElement {
  const b = h(
    'button',
    { type: 'button', class: 'gh-button', ...attrs },
    label
  ) as HTMLButtonElement;
  const data = Object.entries(attrs).filter(([k]) => k.startsWith('data-'));
  const key = [label, ...data.map(([, v]) => String(v))].join(' ');
  b.addEventListener('click', () => whileDisabled(b, where, action, key));
  return b;
}

/**
 * Run `draw` now and every `seconds` while the page is visible (paused in hidden tabs,
 * once more on return; skipped while an input in `where` has the focus, or an element of
 * class gh-keep-open or an end-lease form is there); its errors become a banner in
 * `where`, taken down by its next success (an action's banner stays until that action
 * succeeds or is dismissed). Returns a stop function.
 */
export function autoRefresh(
  where: HTMLElement,
  draw: () => Promise<void>,
  seconds = 10
): () => void {
  let timer: number | undefined;
  let running = false;
  const run = async () => {
    // not while someone is typing or has a form open: a redraw would throw it away
    const active = document.activeElement;
    const typing =
      active !== null && where.contains(active) && active.matches('input, select, textarea');
    if (running || typing || where.querySelector('.gh-end-form, .gh-keep-open')) {
      return;
    }
    running = true;
    try {
      await draw();
      clearError(where, 'refresh');
    } catch (e) {
      showError(where, e, 'refresh');
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

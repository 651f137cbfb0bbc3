/**
 * The pieces the admin pages' forms share: a labelled field, a number field's value, the
 * foot of a form (its submit button, a line saying what it did, a box for its errors)
 * wired to run the request, and the service's refusals said in the form's own words.
 */
import { ApiError } from './api';
import { h, showError } from './dom';

/** A refusal by the form itself (before any request), naming the field it is about by the
 * name the API gives it, as the service's refusals do. */
export class FieldError extends Error {
  field: string;

  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'FieldError';
    this.field = field;
  }
}

let fields = 0;

/**
 * A field: its label, the input, and a hint under it. The input is named by the label
 * alone and described by the hint (aria-labelledby, aria-describedby), so that a screen
 * reader says "Max GPU units, edit text" and then the hint, rather than both as one name.
 */
export function field(label: string, input: HTMLElement, hint?: string): HTMLElement {
  const id = `gh-field-${++fields}`;
  input.setAttribute('aria-labelledby', `${id}-label`);
  if (hint) {
    input.setAttribute('aria-describedby', `${id}-hint`);
  }
  return h(
    'label',
    { class: 'gh-field' },
    h('span', { class: 'gh-field-label', id: `${id}-label` }, label),
    input,
    hint ? h('small', { class: 'gh-muted', id: `${id}-hint` }, hint) : null
  );
}

/** A number field's value: null when empty, else the number as typed (the service judges it). */
export function numberOrNull(input: HTMLInputElement): number | null {
  const v = input.value.trim();
  if (v === '') {
    return null;
  }
  const n = Number(v);
  if (!Number.isFinite(n)) {
    throw new FieldError(input.name, `"${v}" is not a number`);
  }
  return n;
}

/** The foot of a form: place `submit` and `done` in a row, then `errors`. */
export interface FormFoot {
  submit: HTMLButtonElement;
  /** What the last submit did, in a sentence. */
  done: HTMLElement;
  /** Why the last submit was refused (the service's sentence). */
  errors: HTMLElement;
}

/** A form's foot with a submit button labelled `label`. */
export function formFoot(label: string): FormFoot {
  return {
    submit: h(
      'button',
      { type: 'submit', class: 'gh-button gh-primary' },
      label
    ) as HTMLButtonElement,
    done: h('p', { class: 'gh-form-done', 'aria-live': 'polite' }),
    errors: h('div', { class: 'gh-form-errors', 'aria-live': 'assertive' })
  };
}

/** Forget what the last submit said (and the fields it marked as wrong). */
export function clearFoot(foot: FormFoot): void {
  foot.errors.replaceChildren();
  foot.done.textContent = '';
  for (const f of foot.errors.closest('form')?.querySelectorAll('.gh-invalid') ?? []) {
    f.classList.remove('gh-invalid');
    f.querySelector('[aria-invalid]')?.removeAttribute('aria-invalid');
  }
}

/** How a form speaks of the API's fields: the label a person sees, by the field's API
 * name (the `name` of its input); the label of each checkbox, by the same; the fields. */
export interface FormWords {
  labels: Map<string, string>;
  boxes?: Map<string, string>;
  inputs?: Map<string, HTMLElement>;
}

/** The form's labels by the API names of their inputs, read from the form itself (so the
 * label a person sees is the one the errors use). */
function formWords(form: HTMLFormElement): FormWords {
  const words = { labels: new Map(), boxes: new Map(), inputs: new Map() };
  for (const f of form.querySelectorAll<HTMLElement>('.gh-field')) {
    const input = f.querySelector<HTMLInputElement>('input, select, textarea');
    const label = f.querySelector('.gh-field-label')?.textContent?.trim();
    if (!input?.name || !label) {
      continue;
    }
    words.labels.set(input.name, label);
    words.inputs.set(input.name, f);
    if (input.type === 'checkbox') {
      words.boxes.set(input.name, label);
    }
  }
  return words;
}

/** The API name of `field` this form has an input for: "quota.gpu_hours" is the form's
 * "gpu_hours", "members.2" its "members". */
function formField(field: string | undefined, words: FormWords): string | undefined {
  if (!field) {
    return undefined;
  }
  const parts = field.split('.').filter(p => !/^\d+$/.test(p));
  const candidates = [field, parts.join('.'), parts[parts.length - 1]];
  return candidates.find(c => c && words.labels.has(c));
}

/** What the API's checks say (pydantic's phrasing), in plainer words. */
const PHRASES: [RegExp, string][] = [
  [/Input should be greater than or equal to /g, 'must be ≥ '],
  [/Input should be less than or equal to /g, 'must be ≤ '],
  [/Input should be greater than /g, 'must be more than '],
  [/Input should be less than /g, 'must be less than '],
  [/Input should be a valid number[^;]*/g, 'must be a number'],
  [/Input should be a valid integer[^;]*/g, 'must be a whole number'],
  [/Input should be a valid boolean[^;]*/g, 'must be ticked or not'],
  [/Input should be /g, 'must be '],
  [/String should have at most (\d+) characters?/g, 'must be at most $1 characters'],
  [/String should have at least (\d+) characters?/g, 'must be at least $1 characters'],
  // a name such as a quota's cohort (QuotaSpec.cohort's pattern)
  [
    /String should match pattern '\^\[A-Za-z0-9\]\[A-Za-z0-9\._-\]\*\$'/g,
    "must be letters, digits, '.', '_' or '-', starting with a letter or digit"
  ],
  [/ >= /g, ' ≥ '],
  [/ <= /g, ' ≤ '],
  // the CLI's and the API's ways to make a cohort, as the console offers it
  [
    /\((?:PUT \/api\/v1\/cohorts\/\{name\}, )?gpuhub cohort create\)/g,
    "(on this console's Groups page)"
  ]
];

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * A refusal (the service's, or the form's own {@link FieldError}) in the form's words:
 * the field it names by the label a person sees ("GPU-hours per period: must be ≥ 0", not
 * "gpu_hours: Input should be greater than or equal to 0"), other fields it mentions by
 * their labels, and an API switch ("create=true", "create_users: true") as the checkbox
 * that sets it ("tick 'Create the group if the hub lacks it'"). Other errors (and 401 and
 * 403 answers, which the banner words itself) are returned as they are.
 */
export function inFormWords(err: unknown, form: HTMLFormElement): unknown {
  return inWords(err, formWords(form));
}

/** A refusal in the words of `words` (see {@link inFormWords}), for a control that is no
 * form (e.g. `{ labels: new Map([['users', 'Add members']]) }`). */
export function inWords(err: unknown, words: FormWords): unknown {
  const refusal = err instanceof ApiError || err instanceof FieldError;
  if (!refusal || (err instanceof ApiError && (err.status === 401 || err.status === 403))) {
    return err;
  }
  let text = err.message;
  for (const [name, box] of words.boxes ?? []) {
    const n = escape(name);
    text = text
      .replace(new RegExp(`\\(\\s*${n}\\s*(?:=|: ?)\\s*true\\b[^)]*\\)`, 'g'), `(tick '${box}')`)
      .replace(new RegExp(`\\b${n}\\s*(?:=|: ?)\\s*true\\b`, 'g'), `tick '${box}'`);
  }
  const field = formField(err.field, words);
  if (field && err.field) {
    // the sentence starts with the field's API name: "gpu_hours: ...", "end must be ..."
    const head = new RegExp(`^${escape(err.field)}(:\\s*|\\s+)`);
    if (head.test(text)) {
      const label = words.labels.get(field);
      text = text.replace(head, (_, sep: string) =>
        sep.startsWith(':') ? `${label}: ` : `'${label}' `
      );
    }
  }
  // other fields named in the sentence ("term_end must be after term_start"): the API
  // names with an underscore or a dot only, as plain words ("end", "name") may mean others
  const named = [...words.labels.keys()]
    .filter(k => /[_.]/.test(k))
    .sort((a, b) => b.length - a.length);
  for (const name of named) {
    text = text.replace(
      new RegExp(`(?<![\\w.])'?${escape(name)}'?(?!\\w)`, 'g'),
      `'${words.labels.get(name)}'`
    );
  }
  for (const [pattern, plain] of PHRASES) {
    text = text.replace(pattern, plain);
  }
  if (err instanceof ApiError) {
    return new ApiError(err.status, text, err.field);
  }
  const said = new FieldError(err.field, '');
  said.message = text;
  return said;
}

/** Mark the field `err` names as wrong (until the next submit), where the form has it. */
function markField(form: HTMLFormElement, err: unknown): void {
  const words = formWords(form);
  const name = formField((err as { field?: string } | null)?.field, words);
  const f = name ? words.inputs?.get(name) : undefined;
  if (f) {
    f.classList.add('gh-invalid');
    f.querySelector('input, select, textarea')?.setAttribute('aria-invalid', 'true');
  }
}

/** On submit (in the page, not a navigation): clear the last outcome and run `action` with
 * the button disabled; a refusal is shown in `foot.errors` in the form's words (see
 * {@link inFormWords}) and marks the field it names; a success clears them. */
export function onSubmit(form: HTMLFormElement, foot: FormFoot, action: () => Promise<void>): void {
  form.addEventListener('submit', async e => {
    e.preventDefault();
    clearFoot(foot);
    foot.submit.disabled = true;
    try {
      await action();
    } catch (err) {
      showError(foot.errors, inFormWords(err, form), 'submit');
      markField(form, err);
    } finally {
      foot.submit.disabled = false;
    }
  });
}

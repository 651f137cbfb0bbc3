/**
 * The pieces the admin pages' forms share: a labelled field, a number field's value, and
 * the foot of a form (its submit button, a line saying what it did, a box for its errors)
 * wired to run the request.
 */
import { h, whileDisabled } from './dom';

/** A field: its label, the input, and a hint under it. */
export function field(label: string, input: HTMLElement, hint?: string): HTMLElement {
  return h('label', { class: 'gh-field' }, h('span', { class: 'gh-field-label' }, label), input, hint ? h('small', { class: 'gh-muted' }, hint) : null);
}

/** A number field's value: null when empty, else the number as typed (the service judges it). */
export function numberOrNull(input: HTMLInputElement): number | null {
  const v = input.value.trim();
  if (v === '') {
    return null;
  }
  const n = Number(v);
  if (!Number.isFinite(n)) {
    throw new Error(`${input.name.replace(/_/g, ' ')}: "${v}" is not a number`);
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
    submit: h('button', { type: 'submit', class: 'gh-button gh-primary' }, label) as HTMLButtonElement,
    done: h('p', { class: 'gh-form-done', 'aria-live': 'polite' }),
    errors: h('div', { class: 'gh-form-errors', 'aria-live': 'assertive' })
  };
}

/** Forget what the last submit said. */
export function clearFoot(foot: FormFoot): void {
  foot.errors.replaceChildren();
  foot.done.textContent = '';
}

/** On submit (in the page, not a navigation): clear the last outcome and run `action` with
 * the button disabled; its error is shown in `foot.errors`. */
export function onSubmit(form: HTMLFormElement, foot: FormFoot, action: () => Promise<void>): void {
  form.addEventListener('submit', e => {
    e.preventDefault();
    clearFoot(foot);
    void whileDisabled(foot.submit, foot.errors, action);
  });
}

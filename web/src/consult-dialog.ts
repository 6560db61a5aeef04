// A small modal form dialog (flag a comment, give a moderation reason, answer a proposal, confirm deleting the
// account): a labelled `<dialog>` opened with showModal, focus inside it and kept there (Tab wraps), Escape or Cancel
// close it, focus goes back to what had it. `onSubmit` resolves to an error message (the dialog stays open and says
// it) or undefined (the dialog closes).

import { el } from './dom';
import { t } from './i18n';

export interface FormDialogOptions {
  id: string;
  title: string;
  intro?: string;
  fields: Node[];
  submitLabel: string;
  danger?: boolean;
  onSubmit: () => Promise<string | undefined> | string | undefined;
}

const FOCUSABLE = 'button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), a[href], [tabindex]:not([tabindex="-1"])';

/** Keeps Tab and Shift+Tab inside `root`. */
export function trapFocus(root: HTMLElement, e: KeyboardEvent): void {
  if (e.key !== 'Tab') return;
  const items = [...root.querySelectorAll<HTMLElement>(FOCUSABLE)].filter((x) => !x.closest('[hidden]'));
  if (!items.length) return;
  const first = items[0]!;
  const last = items[items.length - 1]!;
  if (e.shiftKey && document.activeElement === first) {
    e.preventDefault();
    last.focus();
  } else if (!e.shiftKey && document.activeElement === last) {
    e.preventDefault();
    first.focus();
  }
}

/** Opens the dialog; resolves true once submitted, false when closed without. */
export function openFormDialog(o: FormDialogOptions): Promise<boolean> {
  document.getElementById(o.id)?.remove();
  const back = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  const titleId = `${o.id}-title`;
  const message = el('p', { class: 'dialog-message', role: 'alert', id: `${o.id}-message` });
  const submit = el('button', { type: 'submit', class: `text-button primary${o.danger ? ' danger' : ''}`, id: `${o.id}-submit` }, o.submitLabel);
  const cancel = el('button', { type: 'button', class: 'text-button', id: `${o.id}-cancel` }, t('consult.cancel'));
  const form = el(
    'form',
    { novalidate: '' },
    el('h2', { id: titleId }, o.title),
    o.intro ? el('p', { class: 'dialog-reason', id: `${o.id}-intro` }, o.intro) : null,
    ...o.fields,
    message,
    el('div', { class: 'dialog-actions' }, submit, cancel),
  );
  const dialog = el('dialog', { id: o.id, class: 'dialog', 'aria-modal': 'true', 'aria-labelledby': titleId, ...(o.intro ? { 'aria-describedby': `${o.id}-intro` } : {}) }, form);
  document.body.append(dialog);
  return new Promise((resolve) => {
    let done = false;
    const close = (ok: boolean) => {
      if (done) return;
      done = true;
      if (typeof dialog.close === 'function' && dialog.open) dialog.close();
      dialog.remove();
      if (back?.isConnected) back.focus();
      resolve(ok);
    };
    cancel.addEventListener('click', () => close(false));
    dialog.addEventListener('cancel', (e) => {
      e.preventDefault();
      close(false);
    });
    dialog.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        close(false);
      } else trapFocus(dialog, e);
    });
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (submit.disabled) return;
      submit.disabled = true;
      message.textContent = '';
      try {
        const err = await o.onSubmit();
        if (err) {
          message.textContent = err;
          message.classList.add('error');
        } else close(true);
      } catch (x) {
        message.textContent = x instanceof Error ? x.message : String(x);
        message.classList.add('error');
      } finally {
        submit.disabled = false;
      }
    });
    if (typeof dialog.showModal === 'function') dialog.showModal();
    else dialog.setAttribute('open', '');
    form.querySelector<HTMLElement>('input, select, textarea')?.focus();
  });
}

/** A labelled field: `<div class="field"><label>…</label><control></div>`. */
export function field(id: string, label: string, control: HTMLElement, hint?: string): HTMLElement {
  control.id = id;
  if (hint) control.setAttribute('aria-describedby', `${id}-hint`);
  return el('div', { class: 'field' }, el('label', { for: id }, label), control, hint ? el('p', { class: 'hint', id: `${id}-hint` }, hint) : null);
}

/** A group of radio buttons in a fieldset with a legend. */
export function radioGroup(name: string, legend: string, options: { value: string; label: string }[], checked?: string, cls = 'radio-group'): HTMLFieldSetElement {
  return el(
    'fieldset',
    { class: cls },
    el('legend', {}, legend),
    ...options.map((o) => {
      const id = `${name}-${o.value}`.replace(/[^A-Za-z0-9_-]/g, '-');
      const input = el('input', { type: 'radio', name, id, value: o.value });
      input.checked = o.value === checked;
      return el('div', { class: 'radio' }, input, el('label', { for: id }, o.label));
    }),
  );
}

/** The value of the checked radio button of a group, or undefined. */
export function radioValue(root: ParentNode, name: string): string | undefined {
  return root.querySelector<HTMLInputElement>(`input[type=radio][name="${name}"]:checked`)?.value;
}

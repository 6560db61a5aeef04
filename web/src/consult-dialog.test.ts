// @vitest-environment happy-dom
import { beforeEach, describe, expect, it } from 'vitest';
import { field, openFormDialog, radioGroup, radioValue } from './consult-dialog';
import { initLang } from './i18n';

beforeEach(() => {
  document.body.replaceChildren();
  initLang('en');
});

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('the form dialog', () => {
  it('is a labelled modal; focus goes in and back; Escape closes it', async () => {
    const opener = document.createElement('button');
    document.body.append(opener);
    opener.focus();
    const input = document.createElement('input');
    const done = openFormDialog({ id: 'd', title: 'Why?', fields: [field('d-x', 'Reason', input)], submitLabel: 'Send', onSubmit: () => undefined });
    const d = document.getElementById('d')!;
    expect(d.getAttribute('aria-modal')).toBe('true');
    expect(document.getElementById(d.getAttribute('aria-labelledby')!)!.textContent).toBe('Why?');
    expect(document.activeElement).toBe(input);
    expect(document.querySelector('label[for="d-x"]')!.textContent).toBe('Reason');
    d.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));
    expect(await done).toBe(false);
    expect(document.getElementById('d')).toBeNull();
    expect(document.activeElement).toBe(opener);
  });

  it('Tab wraps inside it; an error keeps it open and is said; then it closes', async () => {
    const input = document.createElement('input');
    let tries = 0;
    const done = openFormDialog({ id: 'd', title: 'T', fields: [field('d-x', 'X', input)], submitLabel: 'Send', onSubmit: async () => (++tries === 1 ? 'Give the reason.' : undefined) });
    const d = document.getElementById('d')!;
    (d.querySelector('#d-cancel') as HTMLElement).focus();
    d.dispatchEvent(new KeyboardEvent('keydown', { key: 'Tab', bubbles: true, cancelable: true }));
    expect(document.activeElement).toBe(input);
    d.querySelector('form')!.dispatchEvent(new Event('submit', { cancelable: true }));
    await tick();
    await tick();
    expect(d.querySelector('[role=alert]')!.textContent).toBe('Give the reason.');
    expect(d.isConnected).toBe(true);
    d.querySelector('form')!.dispatchEvent(new Event('submit', { cancelable: true }));
    expect(await done).toBe(true);
  });

  it('radio groups have a legend and give their value', () => {
    const g = radioGroup('s', 'Stance', [{ value: 'for', label: 'For' }, { value: 'against', label: 'Against' }], 'against');
    expect(g.querySelector('legend')!.textContent).toBe('Stance');
    expect(radioValue(g, 's')).toBe('against');
    expect(g.querySelector('label[for="s-for"]')!.textContent).toBe('For');
  });
});

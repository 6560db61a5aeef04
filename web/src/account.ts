// Signing in: the header's account control ("Sign in", or the signed-in account and role with a menu: My data,
// Audit log, Sign out) and the sign-in dialog (account and password; "Create an account" where the twin takes
// sign-ups). A modal `<dialog>`: focus moves into it and back to where it was, Escape closes it, the reason it
// opened (a write that needs an account) is said at its top.

import { ApiError } from './api';
import { el } from './dom';
import { onLangChange, t } from './i18n';
import { isAdmin, mainRole, seesOwnData, signUpRefusal, type Session, type SessionState } from './session';

/** The label of a role (`data_owner` → "Data owner"). */
export function roleLabel(role: string | undefined): string {
  return role ? t(`account.roles.${role}`) : t('account.roles.none');
}

/** The message of a failed sign-in, as a key and its values. */
export function signInError(e: unknown): string {
  if (e instanceof ApiError && e.status === 401) return t('account.wrongCredentials');
  if (e instanceof ApiError && e.status === 429) return t('account.tooMany');
  return t('account.signInFailed', { detail: e instanceof Error ? e.message : String(e) });
}

/** The message of a failed sign-up. */
export function signUpError(e: unknown): string {
  if (e instanceof ApiError && signUpRefusal(e.status) === 'closed') return t('account.signUpClosed');
  return t('account.signUpFailed', { detail: e instanceof Error ? e.message : String(e) });
}

export class SignInDialog {
  readonly dialog = el('dialog', { id: 'signin-dialog', class: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'signin-title', 'aria-describedby': 'signin-reason' });
  private readonly title = el('h2', { id: 'signin-title' });
  private readonly reason = el('p', { id: 'signin-reason', class: 'dialog-reason' });
  private readonly idLabel = el('label', { for: 'signin-id' });
  private readonly idInput = el('input', { id: 'signin-id', name: 'username', type: 'text', autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false', required: '' });
  private readonly pwLabel = el('label', { for: 'signin-password' });
  private readonly pwInput = el('input', { id: 'signin-password', name: 'password', type: 'password', autocomplete: 'current-password', required: '' });
  private readonly message = el('p', { id: 'signin-message', class: 'dialog-message', role: 'alert' });
  private readonly submit = el('button', { type: 'submit', class: 'text-button primary', id: 'signin-submit' });
  private readonly registerButton = el('button', { type: 'button', class: 'text-button', id: 'signin-register' });
  private readonly cancel = el('button', { type: 'button', class: 'text-button', id: 'signin-cancel' });
  private readonly form = el('form', { method: 'dialog', novalidate: '' });
  private returnFocus: HTMLElement | null = null;
  private resolve: ((ok: boolean) => void) | undefined;
  private reasonKey: string | undefined;
  private reasonText: string | undefined;
  private busy = false;

  constructor(
    private readonly session: SessionState,
    /** Where focus goes back when what had it is gone. */
    private readonly fallbackFocus: () => HTMLElement | null,
  ) {
    this.form.append(
      this.title,
      this.reason,
      el('div', { class: 'field' }, this.idLabel, this.idInput),
      el('div', { class: 'field' }, this.pwLabel, this.pwInput),
      this.message,
      el('div', { class: 'dialog-actions' }, this.submit, this.registerButton, this.cancel),
    );
    this.dialog.append(this.form);
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.attempt('signIn');
    });
    this.registerButton.addEventListener('click', () => void this.attempt('register'));
    this.cancel.addEventListener('click', () => this.close(false));
    // Escape (the dialog's cancel event) closes it like Cancel
    this.dialog.addEventListener('cancel', (e) => {
      e.preventDefault();
      this.close(false);
    });
    this.dialog.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        this.close(false);
      }
    });
    this.texts();
    onLangChange(() => this.texts());
    document.body.append(this.dialog);
  }

  get isOpen(): boolean {
    return this.dialog.open;
  }

  private texts(): void {
    this.title.textContent = t('account.signInTitle');
    this.idLabel.textContent = t('account.id');
    this.pwLabel.textContent = t('account.password');
    this.submit.textContent = t('account.signIn');
    this.registerButton.textContent = t('account.register');
    this.cancel.textContent = t('account.cancel');
    this.reason.textContent = this.reasonKey ? t(this.reasonKey) : (this.reasonText ?? '');
    this.reason.hidden = !this.reason.textContent;
  }

  /**
   * Opens the dialog; resolves true once signed in, false when closed without. `reason`: a message key, or
   * `{text}` for a message from the server (a 401's detail).
   */
  open(reason?: string | { text: string }): Promise<boolean> {
    if (typeof reason === 'string') {
      this.reasonKey = reason;
      this.reasonText = undefined;
    } else {
      this.reasonKey = undefined;
      this.reasonText = reason?.text;
    }
    this.texts();
    if (this.dialog.open) return new Promise((r) => (this.resolve = chain(this.resolve, r)));
    this.returnFocus = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    this.message.textContent = '';
    this.message.classList.remove('error');
    this.pwInput.value = '';
    if (typeof this.dialog.showModal === 'function') this.dialog.showModal();
    else this.dialog.setAttribute('open', '');
    (this.idInput.value ? this.pwInput : this.idInput).focus();
    return new Promise((r) => (this.resolve = r));
  }

  close(ok: boolean): void {
    if (!this.dialog.open) return;
    if (typeof this.dialog.close === 'function') this.dialog.close();
    else this.dialog.removeAttribute('open');
    this.pwInput.value = '';
    const back = this.returnFocus && this.returnFocus.isConnected && !this.returnFocus.closest('[hidden]') ? this.returnFocus : this.fallbackFocus();
    back?.focus();
    const r = this.resolve;
    this.resolve = undefined;
    r?.(ok);
  }

  private async attempt(kind: 'signIn' | 'register'): Promise<void> {
    if (this.busy) return;
    const id = this.idInput.value.trim();
    const pw = this.pwInput.value;
    if (!id || !pw) {
      this.say(t('account.needBoth'), true);
      (id ? this.pwInput : this.idInput).focus();
      return;
    }
    this.busy = true;
    this.submit.disabled = true;
    this.registerButton.disabled = true;
    this.say(t(kind === 'signIn' ? 'account.signingIn' : 'account.registering'));
    try {
      if (kind === 'signIn') await this.session.signIn(id, pw);
      else await this.session.register(id, pw);
      this.message.textContent = '';
      this.close(true);
    } catch (e) {
      this.say(kind === 'signIn' ? signInError(e) : signUpError(e), true);
      if (kind === 'register' && e instanceof ApiError && signUpRefusal(e.status) === 'closed') this.registerButton.hidden = true;
      this.pwInput.focus();
    } finally {
      this.busy = false;
      this.submit.disabled = false;
      this.registerButton.disabled = false;
    }
  }

  private say(text: string, error = false): void {
    this.message.textContent = text;
    this.message.classList.toggle('error', error);
  }
}

function chain(a: ((ok: boolean) => void) | undefined, b: (ok: boolean) => void): (ok: boolean) => void {
  return (ok) => {
    a?.(ok);
    b(ok);
  };
}

export interface AccountControlOptions {
  openMyData: () => void;
  openAudit: () => void;
  /** Said to screen readers (the map's status region). */
  announce: (text: string) => void;
  /** More entries of the menu (before Sign out): shown when `visible` says so. */
  extra?: { id: string; label: () => string; visible: (s: Session | undefined) => boolean; onClick: () => void }[];
}

/** The header's account control. */
export class AccountControl {
  private readonly signInButton = el('button', { type: 'button', class: 'button', id: 'sign-in' });
  private readonly toggle = el('button', { type: 'button', class: 'button', id: 'account-toggle', 'aria-expanded': 'false', 'aria-controls': 'account-menu' });
  private readonly menu = el('div', { id: 'account-menu', class: 'account-menu', hidden: '' });
  private readonly who = el('p', { class: 'account-who', id: 'account-who' });
  private readonly myData = el('button', { type: 'button', class: 'text-button', id: 'mydata-open' });
  private readonly audit = el('button', { type: 'button', class: 'text-button', id: 'audit-open' });
  private readonly signOut = el('button', { type: 'button', class: 'text-button', id: 'sign-out' });
  private readonly menuMessage = el('p', { class: 'dialog-message', role: 'alert' });
  private readonly extraButtons: HTMLButtonElement[];

  constructor(
    root: HTMLElement,
    private readonly session: SessionState,
    private readonly dialog: SignInDialog,
    private readonly opts: AccountControlOptions,
  ) {
    this.extraButtons = (opts.extra ?? []).map((x) => {
      const b = el('button', { type: 'button', class: 'text-button', id: x.id });
      b.addEventListener('click', () => {
        this.setMenu(false);
        x.onClick();
      });
      return b;
    });
    this.menu.append(this.who, this.myData, this.audit, ...this.extraButtons, this.signOut, this.menuMessage);
    root.append(this.signInButton, this.toggle, this.menu);
    this.signInButton.addEventListener('click', () => void this.dialog.open());
    this.toggle.addEventListener('click', () => this.setMenu(this.menu.hasAttribute('hidden')));
    this.myData.addEventListener('click', () => {
      this.setMenu(false);
      this.opts.openMyData();
    });
    this.audit.addEventListener('click', () => {
      this.setMenu(false);
      this.opts.openAudit();
    });
    this.signOut.addEventListener('click', () => void this.doSignOut());
    this.menu.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        this.setMenu(false, true);
      }
    });
    document.addEventListener('click', (e) => {
      if (!this.menu.hidden && !root.contains(e.target as Node)) this.setMenu(false);
    });
    let shown: string | undefined;
    session.onChange((s) => {
      this.render(s);
      // said when it changes, not when the page finds itself anonymous on load
      if (s?.id !== shown) this.opts.announce(s ? t('account.signedInAs', { id: s.id, role: roleLabel(mainRole(s)) }) : t('account.signedOut'));
      shown = s?.id;
    });
    onLangChange(() => this.render(this.session.current));
    this.render(session.current);
  }

  /** The control that has focus after the dialog when what had it is gone. */
  get focusTarget(): HTMLElement {
    return this.session.current ? this.toggle : this.signInButton;
  }

  private setMenu(open: boolean, focus = false): void {
    this.menu.hidden = !open;
    this.toggle.setAttribute('aria-expanded', String(open));
    if (open) this.menu.querySelector<HTMLElement>('button:not([hidden])')?.focus();
    else if (focus) this.toggle.focus();
  }

  private render(s: Session | undefined): void {
    this.signInButton.textContent = t('account.signIn');
    this.signInButton.hidden = !!s;
    this.toggle.hidden = !s;
    if (!s) this.setMenu(false);
    const role = roleLabel(mainRole(s));
    this.toggle.replaceChildren(el('span', { class: 'account-id' }, s?.displayName ?? s?.id ?? ''), el('span', { class: 'account-role' }, ` · ${role}`));
    this.toggle.setAttribute('aria-label', s ? t('account.menuLabel', { id: s.id, role }) : '');
    this.who.textContent = s ? t('account.signedInAs', { id: s.id, role: s.roles.map(roleLabel).join(', ') || role }) : '';
    this.myData.textContent = t('myData.title');
    this.myData.hidden = !seesOwnData(s);
    this.audit.textContent = t('audit.title');
    this.audit.hidden = !isAdmin(s);
    (this.opts.extra ?? []).forEach((x, i) => {
      const b = this.extraButtons[i]!;
      b.textContent = x.label();
      b.hidden = !x.visible(s);
    });
    this.signOut.textContent = t('account.signOut');
    this.menuMessage.textContent = '';
  }

  private async doSignOut(): Promise<void> {
    try {
      await this.session.signOut();
      this.signInButton.focus();
    } catch (e) {
      // the app is anonymous now whatever the server said; say what it said
      this.signInButton.focus();
      this.opts.announce(t('account.signOutFailed', { detail: e instanceof Error ? e.message : String(e) }));
    }
  }
}

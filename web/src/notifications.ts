// The notifications bell in the top bar (signed-in accounts): the number of unread notifications (replies to one's
// comments, answers and milestones of one's or followed proposals, moderation of one's contributions) and a list
// that marks them read (`/api/notifications`, docs/consultations.md).

import { ApiError } from './api';
import { getNotifications, markRead, type Notification, type Notifications } from './consult-api';
import { pickText } from './consult';
import { el } from './dom';
import { fmtDateTime, lang, onLangChange, t } from './i18n';
import type { SessionState } from './session';

export interface BellOptions {
  /** Opens the consultation a notification is about. */
  openConsultation: (id: string) => void;
  /** How often the count is read again while signed in (ms); 0: never. */
  refreshMs?: number;
}

/** A bell, drawn (the device may have no emoji font). */
function bellIcon(): SVGSVGElement {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', 'bell-icon');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', 'M12 2a6 6 0 0 0-6 6v4.5L4 16v1h16v-1l-2-3.5V8a6 6 0 0 0-6-6zm-2.5 16a2.5 2.5 0 0 0 5 0z');
  svg.append(path);
  return svg;
}

export class NotificationBell {
  private readonly button = el('button', { type: 'button', class: 'button bell', id: 'notif-toggle', 'aria-expanded': 'false', 'aria-controls': 'notif-menu' });
  private readonly menu = el('div', { id: 'notif-menu', class: 'account-menu notif-menu', hidden: '', role: 'region', 'aria-labelledby': 'notif-title' });
  private readonly live = el('span', { class: 'sr-only', role: 'status', 'aria-live': 'polite', id: 'notif-live' });
  private data: Notifications = { unread: 0, items: [] };
  private timer: number | undefined;
  private error = '';

  constructor(
    private readonly root: HTMLElement,
    private readonly session: SessionState,
    private readonly opts: BellOptions,
  ) {
    root.append(this.button, this.menu, this.live);
    this.button.addEventListener('click', () => this.setOpen(this.menu.hasAttribute('hidden')));
    this.menu.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        this.setOpen(false, true);
      }
    });
    document.addEventListener('click', (e) => {
      if (!this.menu.hasAttribute('hidden') && !root.contains(e.target as Node)) this.setOpen(false);
    });
    session.onChange(() => {
      window.clearInterval(this.timer);
      this.data = { unread: 0, items: [] };
      this.render();
      if (session.current) {
        void this.refresh();
        if (opts.refreshMs) this.timer = window.setInterval(() => void this.refresh(), opts.refreshMs);
      } else this.setOpen(false);
    });
    onLangChange(() => this.render());
    this.render();
  }

  async refresh(): Promise<void> {
    if (!this.session.current) return;
    try {
      const before = this.data.unread;
      this.data = await getNotifications({ limit: 30 });
      this.error = '';
      if (this.data.unread > before) this.live.textContent = t('notif.unread', { n: this.data.unread });
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
      // a twin without notifications: no asking again every minute
      if (e instanceof ApiError && e.status === 404) window.clearInterval(this.timer);
    }
    this.render();
  }

  private setOpen(open: boolean, focus = false): void {
    this.menu.hidden = !open;
    this.button.setAttribute('aria-expanded', String(open));
    if (open) {
      void this.refresh().then(() => this.menu.querySelector<HTMLElement>('h2')?.focus());
    } else if (focus) this.button.focus();
  }

  private render(): void {
    const s = this.session.current;
    this.root.hidden = !s;
    const n = this.data.unread;
    this.button.replaceChildren(
      bellIcon(),
      el('span', { class: 'sr-only' }, t('notif.title')),
      n ? el('span', { class: 'bell-count', 'aria-hidden': 'true' }, String(n)) : '',
    );
    this.button.setAttribute('aria-label', n ? t('notif.labelUnread', { n }) : t('notif.label'));
    this.button.dataset.unread = String(n);
    const all = el('button', { type: 'button', class: 'text-button', id: 'notif-read-all' }, t('notif.readAll'));
    all.disabled = !n;
    all.addEventListener('click', () => void this.read({ all: true }));
    this.menu.replaceChildren(
      el('h2', { id: 'notif-title', tabindex: '-1', class: 'notif-title' }, t('notif.title')),
      ...(this.error ? [el('p', { class: 'error' }, t('notif.error', { detail: this.error }))] : []),
      this.data.items.length
        ? el('ul', { class: 'notif-list', id: 'notif-list' }, ...this.data.items.map((x) => this.item(x)))
        : el('p', { class: 'muted' }, t('notif.none')),
      all,
    );
  }

  private item(x: Notification): HTMLElement {
    const text = pickText(x.text, lang()) || t(`notif.kind.${x.kind}`);
    const li = el('li', { class: `notif-item${x.read ? '' : ' unread'}`, 'data-notification': x.id });
    const body: (HTMLElement | string)[] = [
      el('span', { class: 'notif-kind' }, x.read ? t(`notif.kind.${x.kind}`) : `${t('notif.new')} · ${t(`notif.kind.${x.kind}`)}`),
      el('span', { class: 'notif-text' }, text),
      el('time', { datetime: x.at, class: 'muted' }, fmtDateTime(x.at)),
    ];
    const actions = el('div', { class: 'notif-actions' });
    if (x.consultation) {
      const open = el('button', { type: 'button', class: 'link-button' }, t('notif.open'));
      open.addEventListener('click', () => {
        this.setOpen(false);
        if (!x.read) void this.read({ ids: [x.id] });
        this.opts.openConsultation(x.consultation!);
      });
      actions.append(open);
    }
    if (!x.read) {
      const r = el('button', { type: 'button', class: 'link-button', 'data-action': 'read' }, t('notif.markRead'));
      r.addEventListener('click', () => void this.read({ ids: [x.id] }));
      actions.append(r);
    }
    li.append(...body, actions);
    return li;
  }

  private async read(which: { ids: string[] } | { all: true }): Promise<void> {
    try {
      await markRead(which);
      if ('all' in which) for (const x of this.data.items) x.read = true;
      else for (const x of this.data.items) if (which.ids.includes(x.id)) x.read = true;
      this.data.unread = this.data.items.filter((x) => !x.read).length;
      this.live.textContent = t('notif.unread', { n: this.data.unread });
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
    }
    this.render();
    if (!this.menu.hasAttribute('hidden')) (this.menu.querySelector<HTMLElement>('[data-action="read"]') ?? this.menu.querySelector<HTMLElement>('h2'))?.focus();
  }
}

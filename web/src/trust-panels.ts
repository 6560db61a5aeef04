// Transparency for the people the data is about and for those who run the twin: "My data" (a data owner's datasets,
// or every dataset for an administrator, each with who read it, when, how, how many entities and for which purpose,
// from `/api/datasets/{id}/usage` and `…/usage/summary`) and the audit log (administrators: changes to accounts, keys
// and policies, newest first, with a check of its hash chain, `/api/audit` and `/api/audit/verify`).

import { getAudit, getUsage, getUsageSummary, listDatasets, verifyAudit, type Dataset } from './api';
import { el } from './dom';
import { fmtDateTime, fmtNumber, has, onLangChange, t } from './i18n';
import { isAdmin, managesDataset, type Session } from './session';
import {
  actionLabel,
  detailText,
  newestFirst,
  operationLabel,
  parseAudit,
  parseUsageLog,
  parseUsageSummary,
  parseVerification,
  principalLabel,
  usageTotals,
  type AuditRecord,
  type AuditVerification,
  type UsageLog,
  type UsageSummaryRow,
} from './trust';

/** How many reads of each dataset the panel lists. */
const RECENT = 25;

function timeCell(iso: string | undefined): HTMLElement {
  return el('td', {}, iso ? el('time', { datetime: iso, title: iso }, fmtDateTime(iso)) : '—');
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A slug of a dataset id for element ids. */
function slug(id: string): string {
  return id.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '');
}

/** The datasets an account sees in "My data": every one for an administrator, else those it manages. */
export function ownDatasets(s: Session | undefined, all: Dataset[]): Dataset[] {
  return all.filter((d) => managesDataset(s, d)).sort((a, b) => (a.title || a.id).localeCompare(b.title || b.id));
}

/** A dataset's read policy in words. */
function readPolicy(d: Dataset): string {
  const kind = d.read?.kind ?? 'public';
  return has(`myData.read.${kind}`) ? t(`myData.read.${kind}`) : kind;
}

export class MyDataPanel {
  private session: Session | undefined;
  private generation = 0;
  private readonly status = el('p', { class: 'muted', id: 'mydata-status', role: 'status' });
  private readonly list = el('div', { id: 'mydata-list' });
  private readonly refresh = el('button', { type: 'button', class: 'text-button', id: 'mydata-refresh' });
  private data: { datasets: Dataset[]; usage: Map<string, { log?: UsageLog; summary?: UsageSummaryRow[]; error?: string }> } | undefined;

  constructor(private readonly root: HTMLElement) {
    this.refresh.addEventListener('click', () => void this.load(this.session));
    root.replaceChildren(el('p', { class: 'panel-intro', 'data-i18n': 'myData.intro' }, t('myData.intro')), this.refresh, this.status, this.list);
    onLangChange(() => this.render());
    this.render();
  }

  /** Reads the account's datasets and their usage. */
  async load(s: Session | undefined): Promise<void> {
    this.session = s;
    const gen = ++this.generation;
    this.data = undefined;
    this.list.replaceChildren();
    if (!s) {
      this.status.textContent = t('myData.signIn');
      return;
    }
    this.status.textContent = t('myData.loading');
    this.root.setAttribute('aria-busy', 'true');
    try {
      const datasets = ownDatasets(s, await listDatasets());
      const usage = new Map<string, { log?: UsageLog; summary?: UsageSummaryRow[]; error?: string }>();
      await Promise.all(
        datasets.map(async (d) => {
          try {
            const [log, summary] = await Promise.all([getUsage(d.id, RECENT), getUsageSummary(d.id)]);
            usage.set(d.id, { log: parseUsageLog(log), summary: parseUsageSummary(summary) });
          } catch (e) {
            usage.set(d.id, { error: errorText(e) });
          }
        }),
      );
      if (gen !== this.generation) return;
      this.data = { datasets, usage };
    } catch (e) {
      if (gen !== this.generation) return;
      this.status.textContent = t('myData.error', { detail: errorText(e) });
      return;
    } finally {
      if (gen === this.generation) this.root.removeAttribute('aria-busy');
    }
    this.render();
  }

  private render(): void {
    this.refresh.textContent = t('myData.refresh');
    const data = this.data;
    if (!data) return;
    const admin = isAdmin(this.session);
    if (!data.datasets.length) {
      this.status.textContent = admin ? t('myData.noneAdmin') : t('myData.none');
      this.list.replaceChildren();
      return;
    }
    this.status.textContent = t(admin ? 'myData.countAdmin' : 'myData.count', { n: data.datasets.length });
    this.list.replaceChildren(...data.datasets.map((d) => this.datasetSection(d, data.usage.get(d.id) ?? {})));
  }

  private datasetSection(d: Dataset, u: { log?: UsageLog; summary?: UsageSummaryRow[]; error?: string }): HTMLElement {
    const id = `mydata-${slug(d.id)}`;
    const title = d.title || d.id;
    const children: (Node | string)[] = [
      el('h3', { id: `${id}-h` }, title),
      el(
        'dl',
        {},
        el('dt', {}, t('feature.datasetId')),
        el('dd', {}, el('code', {}, d.id)),
        el('dt', {}, t('feature.owner')),
        el('dd', {}, d.owner),
        el('dt', {}, t('feature.licence')),
        el('dd', {}, d.licence),
        el('dt', {}, t('myData.readPolicy')),
        el('dd', {}, readPolicy(d)),
      ),
    ];
    if (u.error) children.push(el('p', { class: 'error' }, t('myData.usageError', { detail: u.error })));
    else {
      const summary = u.summary ?? [];
      const log = u.log ?? { total: 0, records: [] };
      if (!summary.length && !log.records.length) {
        children.push(
          el('p', { class: 'muted empty' }, (d.read?.kind ?? 'public') === 'public' ? t('myData.emptyPublic') : t('myData.empty')),
        );
      } else {
        const tot = usageTotals(summary);
        children.push(el('p', { class: 'usage-totals' }, t('myData.totals', { requests: fmtNumber(tot.requests), readers: fmtNumber(tot.readers), entities: fmtNumber(tot.entities) })));
        if (summary.length) children.push(this.summaryTable(title, summary));
        children.push(this.logTable(title, log));
      }
    }
    return el('section', { class: 'panel-section mydata-dataset', id, 'aria-labelledby': `${id}-h`, 'data-dataset': d.id }, ...children);
  }

  private summaryTable(title: string, rows: UsageSummaryRow[]): HTMLElement {
    return el(
      'table',
      { class: 'trust-table usage-summary' },
      el('caption', {}, t('myData.summaryCaption', { title })),
      el(
        'thead',
        {},
        el(
          'tr',
          {},
          el('th', { scope: 'col' }, t('myData.who')),
          el('th', { scope: 'col' }, t('myData.operation')),
          el('th', { scope: 'col', class: 'num' }, t('myData.requests')),
          el('th', { scope: 'col', class: 'num' }, t('myData.entities')),
          el('th', { scope: 'col' }, t('myData.last')),
        ),
      ),
      el(
        'tbody',
        {},
        ...rows.map((r) =>
          el(
            'tr',
            {},
            el('th', { scope: 'row' }, principalLabel(r.principal)),
            el('td', {}, operationLabel(r.operation)),
            el('td', { class: 'num' }, fmtNumber(r.requests)),
            el('td', { class: 'num' }, fmtNumber(r.entities)),
            timeCell(r.last),
          ),
        ),
      ),
    );
  }

  private logTable(title: string, log: UsageLog): HTMLElement {
    const more = log.total > log.records.length ? t('myData.logMore', { n: log.records.length, total: fmtNumber(log.total) }) : '';
    return el(
      'table',
      { class: 'trust-table usage-log' },
      el('caption', {}, t('myData.logCaption', { title }), more ? el('span', { class: 'muted' }, ` ${more}`) : null),
      el(
        'thead',
        {},
        el(
          'tr',
          {},
          el('th', { scope: 'col' }, t('myData.when')),
          el('th', { scope: 'col' }, t('myData.who')),
          el('th', { scope: 'col' }, t('myData.operation')),
          el('th', { scope: 'col', class: 'num' }, t('myData.entities')),
          el('th', { scope: 'col' }, t('myData.purpose')),
        ),
      ),
      el(
        'tbody',
        {},
        ...log.records.map((r) =>
          el(
            'tr',
            { 'data-principal': r.principal },
            timeCell(r.at),
            el('td', {}, principalLabel(r.principal)),
            el('td', {}, operationLabel(r.operation)),
            el('td', { class: 'num' }, fmtNumber(r.entities)),
            el('td', {}, r.purpose ?? el('span', { class: 'muted' }, t('myData.noPurpose'))),
          ),
        ),
      ),
    );
  }
}

/** At most how many audit records the panel shows (the newest). */
const AUDIT_SHOWN = 200;
/** The server's page size (its maximum). */
const AUDIT_PAGE = 1000;

/** Reads the whole log page by page (oldest first on the server) and keeps the newest `keep`, newest first. */
export async function readAuditNewest(
  fetchPage: (after: number | undefined, limit: number) => Promise<unknown>,
  keep = AUDIT_SHOWN,
  maxPages = 50,
): Promise<{ records: AuditRecord[]; complete: boolean }> {
  let after: number | undefined;
  let kept: AuditRecord[] = [];
  for (let page = 0; page < maxPages; page++) {
    const recs = parseAudit(await fetchPage(after, AUDIT_PAGE));
    kept = newestFirst([...kept, ...recs]).slice(0, keep);
    if (recs.length < AUDIT_PAGE) return { records: kept, complete: true };
    after = recs[recs.length - 1]!.seq;
  }
  return { records: kept, complete: false };
}

export class AuditPanel {
  private generation = 0;
  private records: AuditRecord[] = [];
  private verification: AuditVerification | undefined;
  private verifyError: string | undefined;
  private readonly status = el('p', { class: 'muted', id: 'audit-status', role: 'status' });
  private readonly verifyButton = el('button', { type: 'button', class: 'text-button primary', id: 'audit-verify' });
  private readonly refresh = el('button', { type: 'button', class: 'text-button', id: 'audit-refresh' });
  private readonly verifyResult = el('p', { id: 'audit-verify-result', class: 'verify-result', role: 'status', 'aria-live': 'polite' });
  private readonly table = el('div', { id: 'audit-table' });

  constructor(private readonly root: HTMLElement) {
    this.verifyButton.addEventListener('click', () => void this.verify());
    this.refresh.addEventListener('click', () => void this.load());
    root.replaceChildren(
      el('p', { class: 'panel-intro', 'data-i18n': 'audit.intro' }, t('audit.intro')),
      el('div', { class: 'scenario-actions' }, this.verifyButton, this.refresh),
      this.verifyResult,
      this.status,
      this.table,
    );
    onLangChange(() => this.render());
    this.render();
  }

  async load(): Promise<void> {
    const gen = ++this.generation;
    this.status.textContent = t('audit.loading');
    this.root.setAttribute('aria-busy', 'true');
    try {
      const { records, complete } = await readAuditNewest((after, limit) => getAudit(after, limit));
      if (gen !== this.generation) return;
      this.records = records;
      this.status.textContent = records.length ? t(complete ? 'audit.count' : 'audit.countPartial', { n: records.length }) : t('audit.empty');
    } catch (e) {
      if (gen !== this.generation) return;
      this.records = [];
      this.status.textContent = t('audit.error', { detail: errorText(e) });
    } finally {
      if (gen === this.generation) this.root.removeAttribute('aria-busy');
    }
    this.render();
  }

  private async verify(): Promise<void> {
    // not disabled while checking: a disabled button would lose the keyboard focus
    if (this.verifyButton.getAttribute('aria-disabled') === 'true') return;
    this.verifyButton.setAttribute('aria-disabled', 'true');
    this.verification = undefined;
    this.verifyError = undefined;
    this.verifyResult.textContent = t('audit.verifying');
    this.verifyResult.className = 'verify-result';
    delete this.verifyResult.dataset.ok;
    try {
      this.verification = parseVerification(await verifyAudit());
    } catch (e) {
      this.verifyError = errorText(e);
    } finally {
      this.verifyButton.removeAttribute('aria-disabled');
    }
    this.render();
  }

  private render(): void {
    this.verifyButton.textContent = t('audit.verify');
    this.refresh.textContent = t('audit.refresh');
    const v = this.verification;
    if (this.verifyError) {
      this.verifyResult.textContent = t('audit.verifyError', { detail: this.verifyError });
      this.verifyResult.className = 'verify-result error';
    } else if (v) {
      this.verifyResult.dataset.ok = String(v.ok);
      this.verifyResult.className = `verify-result ${v.ok ? 'ok' : 'error'}`;
      this.verifyResult.textContent = v.ok
        ? t('audit.intact', { n: fmtNumber(v.records) })
        : v.firstBadSeq !== undefined
          ? t('audit.broken', { seq: v.firstBadSeq, reason: v.reason ?? t('feature.unknown') })
          : t('audit.brokenUnknown', { reason: v.reason ?? t('feature.unknown') });
    }
    if (!this.records.length) {
      this.table.replaceChildren();
      return;
    }
    const bad = v && !v.ok ? v.firstBadSeq : undefined;
    const table = el(
      'table',
      { class: 'trust-table audit-log' },
      el('caption', {}, t('audit.caption')),
      el(
        'thead',
        {},
        el(
          'tr',
          {},
          el('th', { scope: 'col', class: 'num' }, t('audit.seq')),
          el('th', { scope: 'col' }, t('audit.when')),
          el('th', { scope: 'col' }, t('audit.actor')),
          el('th', { scope: 'col' }, t('audit.action')),
          el('th', { scope: 'col' }, t('audit.target')),
          el('th', { scope: 'col' }, t('audit.detail')),
        ),
      ),
      el(
        'tbody',
        {},
        ...this.records.map((r) =>
          el(
            'tr',
            { 'data-seq': String(r.seq), class: r.seq === bad ? 'broken' : undefined },
            el('th', { scope: 'row', class: 'num' }, String(r.seq)),
            timeCell(r.at),
            el('td', {}, r.actor),
            el('td', { 'data-action': r.action }, actionLabel(r.action)),
            el('td', {}, el('code', {}, r.target)),
            el('td', { class: 'detail' }, detailText(r.detail)),
          ),
        ),
      ),
    );
    this.table.replaceChildren(el('div', { class: 'table-scroll' }, table));
  }
}

// The answers of the trust endpoints read defensively (a field may be missing or of another kind): a dataset's usage
// log and its summary (`/api/datasets/{id}/usage`, `…/usage/summary`), the audit log and its check (`/api/audit`,
// `/api/audit/verify`), and the provenance of a scenario run (`GET /api/scenarios/{id}/runs/{run}`), which the
// results of the run name as their source.

import { has, t } from './i18n';

function obj(v: unknown): Record<string, unknown> | undefined {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

// ---- usage

/** One read of a dataset's data. */
export interface UsageRecord {
  id?: number;
  at: string;
  dataset?: string;
  /** An account id, `key:<id>`, `jwt:<issuer>#<sub>` or `anonymous`. */
  principal: string;
  operation: string;
  entities: number;
  purpose?: string;
  detail?: string;
}

export interface UsageLog {
  /** How many records match in all (more than `records` when the log was cut). */
  total: number;
  records: UsageRecord[];
}

function usageRecord(v: unknown): UsageRecord | undefined {
  const o = obj(v);
  if (!o) return undefined;
  const at = str(o.at);
  if (!at) return undefined;
  return {
    id: num(o.id),
    at,
    dataset: str(o.dataset),
    principal: str(o.principal) ?? 'anonymous',
    operation: str(o.operation) ?? '',
    entities: num(o.entities) ?? 0,
    purpose: str(o.purpose) || undefined,
    detail: str(o.detail) || undefined,
  };
}

/** `{total, records}`; records without a time are left out; newest first. */
export function parseUsageLog(body: unknown): UsageLog {
  const o = obj(body);
  const list = Array.isArray(o?.records) ? o!.records : Array.isArray(body) ? body : [];
  const records = list.map(usageRecord).filter((r): r is UsageRecord => !!r);
  records.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : (b.id ?? 0) - (a.id ?? 0)));
  return { total: Math.max(num(o?.total) ?? 0, records.length), records };
}

/** Reads of one principal with one operation. */
export interface UsageSummaryRow {
  principal: string;
  operation: string;
  requests: number;
  entities: number;
  first?: string;
  last?: string;
}

/** The summary rows, the most recent reader first. */
export function parseUsageSummary(body: unknown): UsageSummaryRow[] {
  const rows = (Array.isArray(body) ? body : [])
    .map((v): UsageSummaryRow | undefined => {
      const o = obj(v);
      if (!o) return undefined;
      return {
        principal: str(o.principal) ?? 'anonymous',
        operation: str(o.operation) ?? '',
        requests: num(o.requests) ?? 0,
        entities: num(o.entities) ?? 0,
        first: str(o.first),
        last: str(o.last),
      };
    })
    .filter((r): r is UsageSummaryRow => !!r);
  rows.sort((a, b) => (b.last ?? '').localeCompare(a.last ?? ''));
  return rows;
}

/** Totals over summary rows: requests, entities and distinct readers. */
export function usageTotals(rows: UsageSummaryRow[]): { requests: number; entities: number; readers: number } {
  return {
    requests: rows.reduce((n, r) => n + r.requests, 0),
    entities: rows.reduce((n, r) => n + r.entities, 0),
    readers: new Set(rows.map((r) => r.principal)).size,
  };
}

/** Who read, as people read it: an account as it is, `key:abc` as an API key, `anonymous` translated. */
export function principalLabel(p: string): string {
  if (p === 'anonymous' || !p) return t('trust.anonymous');
  if (p.startsWith('key:')) return t('trust.apiKey', { id: p.slice(4) });
  if (p.startsWith('jwt:')) return t('trust.idp', { subject: p.slice(4) });
  return p;
}

/** An operation (`ngsi-ld.query`, `ogc.items`, `temporal`…) as people read it. */
export function operationLabel(op: string): string {
  const key = `trust.operations.${op.replace(/[^A-Za-z0-9]+/g, '_')}`;
  return has(key) ? t(key) : op;
}

// ---- audit

export interface AuditRecord {
  seq: number;
  at: string;
  actor: string;
  action: string;
  target: string;
  detail: unknown;
  prevHash?: string;
  hash?: string;
}

/** The audit records of one page (records without a sequence number are left out), in the server's order. */
export function parseAudit(body: unknown): AuditRecord[] {
  return (Array.isArray(body) ? body : [])
    .map((v): AuditRecord | undefined => {
      const o = obj(v);
      const seq = num(o?.seq);
      if (!o || seq === undefined) return undefined;
      return {
        seq,
        at: str(o.at) ?? '',
        actor: str(o.actor) ?? '',
        action: str(o.action) ?? '',
        target: str(o.target) ?? '',
        detail: o.detail,
        prevHash: str(o.prevHash),
        hash: str(o.hash),
      };
    })
    .filter((r): r is AuditRecord => !!r);
}

/** Newest first, one record per sequence number. */
export function newestFirst(records: AuditRecord[]): AuditRecord[] {
  const bySeq = new Map<number, AuditRecord>();
  for (const r of records) bySeq.set(r.seq, r);
  return [...bySeq.values()].sort((a, b) => b.seq - a.seq);
}

/** A value of a record's detail in words: an access rule by its kind, lists joined, objects as `(key: value, …)`. */
function valueText(v: unknown, depth = 0): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v.every((x) => typeof x !== 'object' || x === null) ? v.map((x) => valueText(x)).join(', ') || '—' : JSON.stringify(v);
  const o = v as Record<string, unknown>;
  if (typeof o.kind === 'string') return Array.isArray(o.groups) ? `${o.kind} (${o.groups.join(', ')})` : o.kind;
  if (depth >= 2) return JSON.stringify(v);
  return `(${Object.entries(o)
    .filter(([, x]) => x !== null && x !== undefined)
    .map(([k, x]) => `${k}: ${valueText(x, depth + 1)}`)
    .join(', ')})`;
}

/** A record's detail in one line: `roles: admin; groups: —`, `before: (read: public, write: private); after: …`. */
export function detailText(detail: unknown): string {
  const o = obj(detail);
  if (!o) return detail === undefined || detail === null ? '' : JSON.stringify(detail);
  return Object.entries(o)
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => `${k}: ${valueText(v)}`)
    .join('; ');
}

/** An audit action (`account.create`, `key.revoke`, `dataset.policy`…) as people read it. */
export function actionLabel(action: string): string {
  const key = `audit.actions.${action.replace(/[^A-Za-z0-9]+/g, '_')}`;
  return has(key) ? t(key) : action;
}

export interface AuditVerification {
  records: number;
  ok: boolean;
  firstBadSeq?: number;
  reason?: string;
}

/** The check's answer; anything unreadable is not "intact". */
export function parseVerification(body: unknown): AuditVerification {
  const o = obj(body);
  return {
    records: num(o?.records) ?? 0,
    ok: o?.ok === true,
    firstBadSeq: num(o?.firstBadSeq),
    reason: str(o?.reason) || undefined,
  };
}

// ---- the provenance of simulation results

/** A scenario run named by a result's provenance source: the path to read it at, on this origin. */
export interface RunRef {
  scenario: string;
  run: string;
  path: string;
}

/**
 * The run a source URL names (`http(s)://host/…/api/scenarios/{id}/runs/{run}` or the path alone), read on the
 * app's own origin (the server may name itself by a public URL the browser does not use); else undefined.
 */
export function runRefOf(source: string | undefined): RunRef | undefined {
  if (!source) return undefined;
  let path: string;
  try {
    path = new URL(source, 'http://origin.invalid').pathname;
  } catch {
    return undefined;
  }
  const m = path.match(/\/api\/scenarios\/([^/]+)\/runs\/([^/]+)\/?$/);
  if (!m) return undefined;
  let scenario: string;
  let run: string;
  try {
    scenario = decodeURIComponent(m[1]!);
    run = decodeURIComponent(m[2]!);
  } catch {
    return undefined;
  }
  if (!scenario || !run) return undefined;
  return { scenario, run, path: `/api/scenarios/${encodeURIComponent(scenario)}/runs/${encodeURIComponent(run)}` };
}

export interface RunInput {
  dataset?: string;
  title?: string;
  licence?: string;
  owner?: string;
  entities?: number;
}

/** What a run says of how its results were computed. */
export interface RunProvenance {
  model: { name?: string; version?: string; method?: string };
  parameters: [string, unknown][];
  inputs: RunInput[];
  requestedBy?: string;
  computedAt?: string;
}

/** The `provenance` of a run answer; undefined when the run has none (a server without it). */
export function parseRunProvenance(run: unknown): RunProvenance | undefined {
  const p = obj(obj(run)?.provenance);
  if (!p) return undefined;
  const m = obj(p.model) ?? {};
  const params = obj(p.parameters) ?? {};
  const inputs = (Array.isArray(p.inputs) ? p.inputs : [])
    .map((v): RunInput | undefined => {
      const o = obj(v);
      if (!o) return undefined;
      return { dataset: str(o.dataset), title: str(o.title), licence: str(o.licence), owner: str(o.owner), entities: num(o.entities) };
    })
    .filter((x): x is RunInput => !!x && !!(x.dataset || x.title));
  return {
    model: { name: str(m.name), version: str(m.version), method: str(m.method) },
    parameters: Object.entries(params),
    inputs,
    requestedBy: str(p.requestedBy) || undefined,
    computedAt: str(p.computedAt) || undefined,
  };
}

/** A parameter's value in one line. */
export function paramText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v === null || v === undefined) return '—';
  if (Array.isArray(v) && v.every((x) => typeof x !== 'object' || x === null)) return v.join(', ');
  return JSON.stringify(v);
}

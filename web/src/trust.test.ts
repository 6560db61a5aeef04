import { beforeEach, describe, expect, it, vi } from 'vitest';
import { initLang } from './i18n';
import {
  actionLabel,
  detailText,
  newestFirst,
  operationLabel,
  paramText,
  parseAudit,
  parseRunProvenance,
  parseUsageLog,
  parseUsageSummary,
  parseVerification,
  principalLabel,
  runRefOf,
  usageTotals,
} from './trust';
import { readAuditNewest } from './trust-panels';

beforeEach(() => {
  vi.stubGlobal('document', { documentElement: { lang: '' }, body: { querySelectorAll: () => [] } });
  initLang('en');
});

describe('usage', () => {
  it('reads the usage log, newest first, with missing fields filled and records without a time left out', () => {
    const log = parseUsageLog({
      total: 3,
      records: [
        { id: 1, at: '2026-11-26T10:00:00Z', dataset: 'urn:d', principal: 'bo', operation: 'ngsi-ld.query', entities: 2, purpose: 'research', detail: null },
        { id: 2, at: '2026-11-26T11:00:00Z', principal: 'key:abc', operation: 'temporal', entities: 'x' },
        { id: 3, principal: 'nobody' },
        'junk',
      ],
    });
    expect(log.total).toBe(3);
    expect(log.records.map((r) => r.id)).toEqual([2, 1]);
    expect(log.records[1]).toMatchObject({ principal: 'bo', purpose: 'research', entities: 2 });
    expect(log.records[0]).toMatchObject({ principal: 'key:abc', entities: 0, purpose: undefined });
    expect(parseUsageLog(undefined)).toEqual({ total: 0, records: [] });
    expect(parseUsageLog({ total: 0 }).records).toEqual([]);
  });

  it('reads the summary, the latest reader first, and totals it', () => {
    const rows = parseUsageSummary([
      { dataset: 'urn:d', principal: 'bo', operation: 'ngsi-ld.query', requests: 2, entities: 5, first: '2026-11-26T09:00:00Z', last: '2026-11-26T10:00:00Z' },
      { dataset: 'urn:d', principal: 'cy', operation: 'temporal', requests: 1, entities: 1, first: '2026-11-26T11:00:00Z', last: '2026-11-26T11:00:00Z' },
      { dataset: 'urn:d', principal: 'bo', operation: 'temporal', requests: 1, entities: 3 },
      null,
    ]);
    expect(rows.map((r) => r.principal)).toEqual(['cy', 'bo', 'bo']);
    expect(usageTotals(rows)).toEqual({ requests: 4, entities: 9, readers: 2 });
    expect(parseUsageSummary({ not: 'a list' })).toEqual([]);
  });

  it('names readers and operations as people read them', () => {
    expect(principalLabel('anonymous')).toBe('Anonymous');
    expect(principalLabel('key:abc')).toBe('API key abc');
    expect(principalLabel('jwt:https://idp#42')).toBe('Identity provider: https://idp#42');
    expect(principalLabel('bo')).toBe('bo');
    expect(operationLabel('ngsi-ld.query')).toBe('Query (NGSI-LD)');
    expect(operationLabel('something.new')).toBe('something.new');
  });
});

describe('audit', () => {
  const rec = (seq: number, action = 'account.create') => ({ seq, at: `2026-11-26T10:00:0${seq % 10}Z`, actor: 'cli:root', action, target: `t${seq}`, detail: { roles: ['admin'], organisation: null }, prevHash: 'p', hash: 'h' });

  it('reads the records, drops those without a sequence number, and sorts newest first without duplicates', () => {
    const recs = parseAudit([rec(1), rec(2), { at: 'x' }, rec(3)]);
    expect(recs.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(newestFirst([...recs, rec(2)]).map((r) => r.seq)).toEqual([3, 2, 1]);
    expect(parseAudit({})).toEqual([]);
  });

  it('writes a detail in one line and labels known actions', () => {
    expect(detailText({ roles: ['admin', 'planner'], groups: [], organisation: null, scopes: 'x' })).toBe('roles: admin, planner; groups: —; scopes: x');
    expect(detailText({ before: { read: { kind: 'public' }, write: { kind: 'groups', groups: ['a', 'b'] } }, after: { read: { kind: 'registered' } } })).toBe(
      'before: (read: public, write: groups (a, b)); after: (read: registered)',
    );
    expect(detailText({ deep: { a: { b: { c: 1 } } } })).toBe('deep: (a: (b: {"c":1}))');
    expect(detailText(undefined)).toBe('');
    expect(actionLabel('key.revoke')).toBe('API key revoked');
    expect(actionLabel('other.thing')).toBe('other.thing');
  });

  it('reads the chain check; anything unreadable is not intact', () => {
    expect(parseVerification({ records: 7, ok: true, firstBadSeq: null, reason: null })).toEqual({ records: 7, ok: true, firstBadSeq: undefined, reason: undefined });
    expect(parseVerification({ records: 7, ok: false, firstBadSeq: 4, reason: 'hash mismatch' })).toEqual({ records: 7, ok: false, firstBadSeq: 4, reason: 'hash mismatch' });
    expect(parseVerification('nonsense').ok).toBe(false);
  });

  it('readAuditNewest pages through the log (oldest first on the server) and keeps the newest', async () => {
    const all = Array.from({ length: 2500 }, (_, i) => rec(i + 1));
    const pages: (number | undefined)[] = [];
    const out = await readAuditNewest(async (after, limit) => {
      pages.push(after);
      const from = after ?? 0;
      return all.slice(from, from + limit);
    }, 10);
    expect(pages).toEqual([undefined, 1000, 2000]);
    expect(out.complete).toBe(true);
    expect(out.records.map((r) => r.seq)).toEqual([2500, 2499, 2498, 2497, 2496, 2495, 2494, 2493, 2492, 2491]);
    const capped = await readAuditNewest(async (after, limit) => all.slice(after ?? 0, (after ?? 0) + limit), 5, 1);
    expect(capped.complete).toBe(false);
  });
});

describe('the provenance of simulation results', () => {
  it('finds the scenario run a source names, whatever the host, and its path on this origin', () => {
    expect(runRefOf('http://127.0.0.1:1026/api/scenarios/urn%3Angsi-ld%3AScenario%3Aabc/runs/r1')).toEqual({
      scenario: 'urn:ngsi-ld:Scenario:abc',
      run: 'r1',
      path: '/api/scenarios/urn%3Angsi-ld%3AScenario%3Aabc/runs/r1',
    });
    expect(runRefOf('https://twin.example.org/prefix/api/scenarios/s/runs/r%2F2')?.path).toBe('/api/scenarios/s/runs/r%2F2');
    expect(runRefOf('/api/scenarios/s/runs/r')?.run).toBe('r');
    // the baseline's results name the baseline, not a run; other sources are not runs
    for (const s of [undefined, '', 'http://x/api/scenarios/baseline', 'osm', 'http://x/api/scenarios/s/runs/', 'http://x/api/scenarios/s/runs/r/extra', 'http://x/api/scenarios/%E0%A4%A/runs/r'])
      expect(runRefOf(s)).toBeUndefined();
  });

  it('reads a run’s provenance defensively', () => {
    const p = parseRunProvenance({
      id: 'r1',
      status: 'done',
      provenance: {
        model: { name: 'urbantwin traffic', version: '0.4.1', method: 'Frank-Wolfe user equilibrium' },
        parameters: { iterations: 50, gap: 0.001 },
        inputs: [
          { dataset: 'urn:ngsi-ld:Dataset:osm', title: 'OpenStreetMap', licence: 'ODbL-1.0', owner: 'OpenStreetMap contributors', entities: 1234 },
          { licence: 'x' },
          'junk',
        ],
        requestedBy: 'ann',
        computedAt: '2026-11-26T10:00:00Z',
      },
    })!;
    expect(p.model).toEqual({ name: 'urbantwin traffic', version: '0.4.1', method: 'Frank-Wolfe user equilibrium' });
    expect(p.parameters).toEqual([['iterations', 50], ['gap', 0.001]]);
    expect(p.inputs).toEqual([{ dataset: 'urn:ngsi-ld:Dataset:osm', title: 'OpenStreetMap', licence: 'ODbL-1.0', owner: 'OpenStreetMap contributors', entities: 1234 }]);
    expect(p.requestedBy).toBe('ann');
    expect(parseRunProvenance({ id: 'r', status: 'done' })).toBeUndefined();
    expect(parseRunProvenance(null)).toBeUndefined();
    const bare = parseRunProvenance({ provenance: { requestedBy: null, inputs: 'no' } })!;
    expect(bare).toEqual({ model: { name: undefined, version: undefined, method: undefined }, parameters: [], inputs: [], requestedBy: undefined, computedAt: undefined });
  });

  it('writes a parameter in one line', () => {
    expect(paramText(3)).toBe('3');
    expect(paramText('x')).toBe('x');
    expect(paramText([1, 'a'])).toBe('1, a');
    expect(paramText({ a: 1 })).toBe('{"a":1}');
    expect(paramText(null)).toBe('—');
  });
});

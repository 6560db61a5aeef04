// End-to-end tests of the consultation pages (docs/consultations.md) in headless Chromium against `urbantwin demo`:
// a planner puts a scenario closing Fabianinkatu to the public through the API; a citizen opens the consultation from
// its link, looks at the scenario's delta layer, signs in, comments with a stance, replies, votes, proposes a street
// change of her own (a fork of the baseline, edited and run in the scenario editor), follows the consultation and,
// once voting opens, supports another citizen's proposal; a moderator hides a reported comment with a public reason,
// which an anonymous visitor reads in the moderation log and in place of the comment's text. A new citizen verifies an
// e-mail address with the code the demo writes to its outbox, for a consultation that counts only verified accounts; a
// citizen answers the demo's own survey; a citizen who commented deletes their account. axe-core checks the page
// signed out and signed in. Run with `npm test` after `npm run build`.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fillSignIn, launchBrowser, mapIdle, newestMail, openApp, REPO, signIn, startTwin } from './harness.mjs';

const require = createRequire(import.meta.url);
/** axe-core, bundled with the tests (a devDependency), injected into the page: nothing is fetched at run time. */
const AXE = require.resolve('axe-core/axe.min.js');
/** Fabianinkatu in view, the map's other layers off (as in app.test.mjs). */
const VIEW = '#map=15.6/60.1688/24.9470/0/0&off=buildings,pois,landuse';

let twin;
let browser;
/** What the set-up made: the consultation's id, the scenario's, and the API sessions of the accounts. */
let setup;
/** Why the tests are skipped, if they are. */
let skip;

/** An API session of an account (signed in with its password): JSON in and out, the cookie and the CSRF token sent. */
async function apiSession(account) {
  const res = await fetch(`${twin.url}/api/auth/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ id: account.id, password: account.password }),
  });
  assert.equal(res.status, 200, `sign-in of ${account.id}: ${res.status}`);
  const body = await res.json();
  const cookie = res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');
  const csrf = body.csrfToken;
  const call = async (method, path, data, expect = [200, 201, 202, 204]) => {
    const r = await fetch(`${twin.url}${path}`, {
      method,
      headers: { Cookie: cookie, ...(csrf ? { 'X-CSRF-Token': csrf } : {}), ...(data !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      ...(data !== undefined ? { body: JSON.stringify(data) } : {}),
    });
    const text = await r.text();
    assert.ok(expect.includes(r.status), `${method} ${path} as ${account.id}: HTTP ${r.status} ${text.slice(0, 300)}`);
    return text ? JSON.parse(text) : undefined;
  };
  return { id: account.id, call, get: (p) => call('GET', p), post: (p, d) => call('POST', p, d), put: (p, d) => call('PUT', p, d) };
}

async function waitRun(api, scenario, run) {
  const until = Date.now() + 180_000;
  for (;;) {
    const r = await api.get(`/api/scenarios/${encodeURIComponent(scenario)}/runs/${encodeURIComponent(run)}`);
    if (r.status === 'done') return r;
    assert.ok(!['failed', 'cancelled'].includes(r.status), `the run ended ${r.status}: ${r.message ?? ''}`);
    assert.ok(Date.now() < until, 'the run finished within 3 minutes');
    await new Promise((res) => setTimeout(res, 500));
  }
}

/** Runs axe-core on the page; resolves to its serious and critical violations (the map's canvas left out). */
async function axe(page) {
  // evaluated through the DevTools protocol: the app's Content-Security-Policy (script-src 'self') allows no inline script
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(readFileSync(AXE, 'utf8'));
  const result = await page.evaluate(async () => {
    const r = await window.axe.run({ exclude: [['#map canvas']] }, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ')) }));
  });
  return result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** A point on the screen on Fabianinkatu (MapLibre answers; the click is a real one). */
async function fabianinkatu(page) {
  await mapIdle(page);
  const at = await page.evaluate(() => {
    const map = window.urbantwin.map;
    const canvas = map.getCanvas();
    const r = canvas.getBoundingClientRect();
    for (let y = 80; y < canvas.clientHeight - 80; y += 6)
      for (let x = 480; x < canvas.clientWidth - 80; x += 6) {
        if (document.elementFromPoint(r.left + x, r.top + y) !== canvas) continue;
        const fs = map.queryRenderedFeatures([[x - 1, y - 1], [x + 1, y + 1]], { layers: ['roads'] });
        if (fs.length && fs.every((f) => f.properties.name === 'Fabianinkatu')) return { x, y };
      }
    return null;
  });
  assert.ok(at, 'Fabianinkatu is in view');
  const box = await page.locator('#map canvas').boundingBox();
  return { x: box.x + at.x, y: box.y + at.y };
}

/** HTTP errors the app expects: a survey never answered (404). */
const expected = (p) => !/HTTP 404: .*\/surveys\/[^/]+\/response$/.test(p) && !/status of 404/.test(p);

before(async () => {
  twin = await startTwin();
  browser = await launchBrowser();
  const a = twin.accounts;
  if (!a?.planner || !a.citizen || !a.citizen2 || !a.moderator) {
    skip = 'the accounts of the consultation tests could not be made (no moderator role on this server?)';
    return;
  }
  const probe = await fetch(`${twin.url}/api/consultations`);
  if (probe.status === 404) {
    skip = 'this server has no consultations API';
    return;
  }
  const planner = await apiSession(a.planner);
  const citizen2 = await apiSession(a.citizen2);
  // the scenario put to the public: Fabianinkatu closed, run
  const scenario = await planner.post('/api/scenarios', { name: 'Fabianinkatu car-free', description: 'Fabianinkatu closed to cars', edits: [{ kind: 'closeStreet', name: 'Fabianinkatu' }] });
  const run = await planner.post(`/api/scenarios/${encodeURIComponent(scenario.id)}/runs`);
  await waitRun(planner, scenario.id, run.id);
  const now = Date.now();
  const consultation = await planner.post('/api/consultations', {
    title: { en: 'A car-free Fabianinkatu', fi: 'Autoton Fabianinkatu' },
    summary: { en: 'Should Fabianinkatu be closed to cars?' },
    description: { en: 'The city studies closing Fabianinkatu to cars between Esplanadi and Kruunuhaka.\n\nTell us what you think.' },
    scenarios: [scenario.id],
    phases: [{ phase: 'feedback', start: new Date(now - 3600_000).toISOString(), end: new Date(now + 30 * 86400_000).toISOString() }],
    supportsPerPerson: 3,
    published: true,
  });
  const id = consultation.id;
  const c = (p) => `/api/consultations/${encodeURIComponent(id)}${p}`;
  // another citizen's comment and proposal
  const other = await citizen2.post(c('/comments'), { body: 'Fewer cars, more room for people.', stance: 'for', lang: 'en' });
  const otherProposal = await citizen2.post(c('/proposals'), { title: 'Benches by the church', body: 'Put benches where cars drove.', location: [24.9503, 60.1697] });
  setup = { id, scenario: scenario.id, planner, citizen2, other, otherProposal, c };
});

after(async () => {
  await browser?.close();
  await twin?.stop();
});

describe('consultations', () => {
  test('a citizen opens a consultation from its link, sees the delta layer, comments, replies, votes, proposes a street change, follows and supports', async (t) => {
    if (skip) return t.skip(skip);
    const { id, scenario, c, planner, other, otherProposal } = setup;
    const page = await openApp(browser, twin.url, { hash: `?consultation=${encodeURIComponent(id)}${VIEW}` });
    const panel = page.locator('#consult-panel');
    await panel.waitFor();
    await page.waitForFunction(() => /A car-free Fabianinkatu/.test(document.querySelector('#consult-title')?.textContent ?? ''));
    assert.equal(await page.getAttribute('#consult-toggle', 'aria-expanded'), 'true');
    assert.match(await page.locator('#consult-phase').textContent(), /Now: Feedback/);
    assert.match(await page.locator('#consult-allowed').textContent(), /comment/);
    assert.equal(await page.locator('#consult-timeline [aria-current="step"]').getAttribute('data-phase'), 'feedback');
    assert.match(await page.locator('#consult-counts').textContent(), /Participants/);
    // the scenario's delta layer on the map, with its legend
    await page.locator(`.consult-scenario button[data-scenario="${scenario}"]`).click();
    await page.locator('#consult-delta-legend').waitFor();
    assert.equal(await page.locator(`.consult-scenario button[data-scenario="${scenario}"]`).getAttribute('aria-pressed'), 'true');
    const layer = await page.evaluate(() => {
      const map = window.urbantwin.map;
      return { visible: map.getLayoutProperty('app-scenario-delta', 'visibility'), filter: JSON.stringify(map.getFilter('app-scenario-delta')) };
    });
    assert.equal(layer.visible, 'visible');
    assert.ok(layer.filter.includes(scenario), `the delta layer shows the scenario (${layer.filter})`);
    await page.waitForFunction(() => window.urbantwin.map.querySourceFeatures('app-scenario-flows', { sourceLayer: 'TrafficFlowObserved' }).some((f) => f.properties.closed === true), null, { timeout: 30_000 });
    // the link survives a reload
    assert.match(page.url(), new RegExp(`\\?consultation=${id}`));

    // comments: anonymous, a note leads to the sign-in dialog
    await page.locator('#consult-tab-comments').click();
    await page.locator('#consult-panel-comments .consult-signin').click();
    assert.equal(await page.locator('#signin-reason').textContent(), 'Sign in to take part');
    await fillSignIn(page, twin.accounts.citizen);
    const form = page.locator('#consult-comment-form');
    await form.waitFor();
    // a comment with a stance
    await page.locator('#consult-comment-body').fill('Close it: the street is too narrow for cars and people.');
    await page.locator('#consult-comment-stance-against').check();
    await page.locator('#consult-comment-submit').click();
    const mine = page.locator('#consult-comments > li', { hasText: 'too narrow for cars' });
    await mine.waitFor();
    assert.equal(await mine.locator('.stance').getAttribute('data-stance'), 'against');
    assert.match(await mine.locator('.stance').textContent(), /Against/);
    const mineId = await mine.getAttribute('data-comment');
    // a reply to it, indented under it
    await mine.locator('[data-action="reply"]').click();
    await mine.locator('.reply-form textarea').fill('And the buses would be faster.');
    await mine.locator('.reply-form input[value="for"]').check();
    await mine.locator('[data-action="send-reply"]').click();
    const reply = page.locator('#consult-comments > li', { hasText: 'buses would be faster' });
    await reply.waitFor();
    assert.equal(await reply.getAttribute('data-depth'), '2');
    const [mineBox, replyBox] = [await mine.boundingBox(), await reply.boundingBox()];
    assert.ok(replyBox.x > mineBox.x + 8, 'the reply is indented');
    // an up vote on the other citizen's comment
    const theirs = page.locator(`[data-comment="${other.id}"]`);
    const up = theirs.locator('[data-vote="up"]');
    assert.equal(await up.getAttribute('aria-pressed'), 'false');
    await up.click();
    await page.waitForFunction((cid) => document.querySelector(`[data-comment="${cid}"] [data-vote="up"]`)?.getAttribute('aria-pressed') === 'true', other.id);
    assert.equal(await theirs.locator('[data-vote="up"]').getAttribute('data-count'), '1');
    // one's own comment has no vote buttons that work
    assert.equal(await page.locator(`[data-comment="${mineId}"] [data-vote="up"]`).isDisabled(), true);

    // follow
    await page.locator('#consult-follow').click();
    await page.waitForFunction(() => document.querySelector('#consult-follow')?.getAttribute('aria-pressed') === 'true');

    // proposals: the other citizen's gets a support (feedback and voting take supports)
    await page.locator('#consult-tab-proposals').click();
    const support = page.locator(`[data-proposal="${otherProposal.id}"] [data-action="support"]`);
    await support.waitFor();
    assert.equal(await support.isDisabled(), false);
    const supportsBefore = Number(await page.locator(`[data-proposal="${otherProposal.id}"] .support-count`).getAttribute('data-supports'));
    await support.click();
    await page.waitForFunction((pid) => document.querySelector(`[data-proposal="${pid}"] [data-action="support"]`)?.getAttribute('aria-pressed') === 'true', otherProposal.id);
    assert.equal(Number(await page.locator(`[data-proposal="${otherProposal.id}"] .support-count`).getAttribute('data-supports')), supportsBefore + 1);
    assert.match(await page.locator('#consult-supports-left').textContent(), /You support 1 of at most 3/);

    // a street change of one's own: a fork of today's streets, Fabianinkatu closed in the scenario editor, run
    await page.locator('#consult-proposal-new').click();
    await page.locator('#consult-proposal-title').fill('Close Fabianinkatu by the park');
    await page.locator('#consult-proposal-body').fill('Only the part by the park, so that deliveries still get through.');
    await page.selectOption('#consult-fork-base', 'baseline');
    await page.locator('#consult-fork').click();
    await page.locator('#consult-fork-banner').waitFor();
    assert.equal(await page.locator('#scenario-panel').isVisible(), true, 'the scenario editor opens on the fork');
    assert.equal(await page.locator('#consult-fork-title').inputValue(), 'Close Fabianinkatu by the park');
    await page.locator('#scenario-pick').click();
    const at = await fabianinkatu(page);
    await page.mouse.click(at.x, at.y);
    await page.waitForFunction(() => document.querySelector('#scenario-street')?.value === 'Fabianinkatu');
    await page.selectOption('#scenario-action', 'closeStreet');
    await page.locator('#scenario-add').click();
    await page.locator('#scenario-pick').click();
    await page.locator('#scenario-run').click();
    await page.waitForFunction(() => document.querySelector('#scenario-run-state')?.dataset.status === 'done', null, { timeout: 180_000 });
    await page.locator('#scenario-summary').waitFor();
    await page.locator('#consult-fork-submit').click();
    // back on the consultation's proposals: listed with its status
    const proposal = page.locator('.proposal', { hasText: 'Close Fabianinkatu by the park' });
    await proposal.waitFor({ timeout: 20_000 });
    assert.equal(await proposal.getAttribute('data-status'), 'submitted');
    assert.match(await proposal.locator('.status').textContent(), /Submitted/);
    assert.match(await proposal.textContent(), /A street change/);
    assert.equal(await page.locator('#consult-panel').isVisible(), true);

    // the results phase (the planner moves the phases): supports close, and the page says why; the follow stays
    const cur = await planner.get(c(''));
    const now = Date.now();
    const body = { ...cur, phases: [
      { phase: 'feedback', start: new Date(now - 7200_000).toISOString(), end: new Date(now - 60_000).toISOString() },
      { phase: 'results', start: new Date(now - 60_000).toISOString(), end: new Date(now + 30 * 86400_000).toISOString() },
    ] };
    for (const k of ['currentPhase', 'allowed', 'counts', 'following', 'scenarioSummaries', 'createdAt', 'modifiedAt', 'owner', 'organisation']) delete body[k];
    await planner.put(c(''), body);
    await page.reload();
    await page.waitForFunction(() => window.urbantwin?.ready === true);
    await page.waitForFunction(() => /Results/.test(document.querySelector('#consult-phase')?.textContent ?? ''));
    assert.match(await page.locator('#consult-allowed').textContent(), /Nothing can be added/);
    assert.equal(await page.getAttribute('#consult-follow', 'aria-pressed'), 'true');
    await page.locator('#consult-tab-proposals').click();
    const closed = page.locator(`[data-proposal="${otherProposal.id}"] [data-action="support"]`);
    await closed.waitFor();
    assert.equal(await closed.getAttribute('aria-pressed'), 'true');
    assert.equal(await closed.isDisabled(), true);
    assert.match(await page.locator(`[data-proposal="${otherProposal.id}"] .support-why`).textContent(), /not given in this phase/);
    // feedback again, for the tests after this one
    await planner.put(c(''), { ...body, phases: [{ phase: 'feedback', start: new Date(now - 7200_000).toISOString(), end: new Date(now + 30 * 86400_000).toISOString() }] });
    // the results: stances and the proposals by supports
    await page.locator('#consult-tab-results').click();
    await page.locator('.stance-chart').first().waitFor();
    assert.match(await page.locator('#consult-results-proposals').textContent(), /Benches by the church/);
    await page.locator('#consult-tab-overview').click();
    assert.deepEqual(page.problems.filter(expected), []);
    await page.context().close();
  });

  test('a moderator hides a reported comment with a reason; the public log shows it and the comment shows as hidden', async (t) => {
    if (skip) return t.skip(skip);
    const { id, c, citizen2 } = setup;
    const citizen = await apiSession(twin.accounts.citizen);
    const rude = await citizen.post(c('/comments'), { body: 'Whoever planned this should be fired, idiots.', stance: 'against', lang: 'en' });
    await citizen2.post(c('/flags'), { target: `comment:${rude.id}`, reason: 'offensive', note: 'an insult' });

    const page = await openApp(browser, twin.url, { hash: VIEW });
    await signIn(page, twin.accounts.moderator);
    await page.locator('#account-toggle').click();
    await page.locator('#moderation-open').click();
    const item = page.locator(`.queue-item[data-target="comment:${rude.id}"]`);
    await item.waitFor();
    assert.match(await item.textContent(), /should be fired/);
    assert.match(await item.textContent(), /Offensive × 1/);
    await item.locator('[data-action="hide"]').click();
    const dialog = page.locator('#consult-moderate');
    await dialog.waitFor();
    // the reason is required
    await page.locator('#consult-moderate-submit').click();
    assert.equal(await page.locator('#consult-moderate-message').textContent(), 'Give the reason.');
    await page.locator('#consult-moderate-reason').fill('Insults another person (rule 2).');
    await page.locator('#consult-moderate-submit').click();
    await dialog.waitFor({ state: 'detached' });
    await page.waitForFunction((tg) => !document.querySelector(`.queue-item[data-target="${tg}"]`), `comment:${rude.id}`);
    assert.deepEqual(page.problems.filter(expected), []);
    await page.context().close();

    // an anonymous visitor: the public moderation log, and the comment hidden without its text
    const anon = await openApp(browser, twin.url, { hash: `?consultation=${encodeURIComponent(id)}${VIEW}`, name: 'consultation-moderation-anonymous' });
    await anon.locator('#consult-tab-comments').waitFor();
    await anon.locator('#consult-tab-comments').click();
    const hidden = anon.locator(`[data-comment="${rude.id}"]`);
    await hidden.waitFor();
    assert.equal(await hidden.getAttribute('data-state'), 'hidden');
    const text = await hidden.textContent();
    assert.match(text, /Hidden by moderation: Insults another person \(rule 2\)\./);
    assert.doesNotMatch(text, /fired/);
    await anon.locator('#consult-back').waitFor();
    await anon.locator('#consult-back').click();
    await anon.locator('#consult-log-open').click();
    const row = anon.locator(`#consult-log-table tr[data-target="comment:${rude.id}"]`);
    await row.waitFor();
    assert.match(await row.locator('.log-reason').textContent(), /Insults another person \(rule 2\)\./);
    assert.match(await row.textContent(), /Hidden/);
    assert.deepEqual(anon.problems.filter(expected), []);
    await anon.context().close();
  });

  test('a new citizen verifies an e-mail address with the code from the outbox, for a consultation that needs one', async (t) => {
    if (skip) return t.skip(skip);
    const { planner, scenario } = setup;
    const now = Date.now();
    const strict = await planner.post('/api/consultations', {
      title: { en: 'Verified voices on Fabianinkatu', fi: 'Vahvistetut äänet Fabianinkadulla' },
      summary: { en: 'Only accounts with a verified address count here.' },
      scenarios: [scenario],
      phases: [{ phase: 'feedback', start: new Date(now - 3600_000).toISOString(), end: new Date(now + 30 * 86400_000).toISOString() }],
      requireVerifiedEmail: true,
      minAccountAgeHours: 0,
      published: true,
    });
    const page = await openApp(browser, twin.url, { hash: `?consultation=${encodeURIComponent(strict.id)}${VIEW}` });
    await page.waitForFunction(() => /Verified voices/.test(document.querySelector('#consult-title')?.textContent ?? ''));
    // a new account, made in the sign-in dialog (or, on a twin without sign-ups, one made by the operator)
    await page.locator('#sign-in').click();
    const id = `web-mail-${Date.now().toString(36)}`;
    await page.locator('#signin-id').fill(id);
    await page.locator('#signin-password').fill(`mail-${Math.random().toString(36).slice(2)}-pw`);
    const answer = page.waitForResponse((r) => r.url().endsWith('/api/auth/register'));
    await page.locator('#signin-register').click();
    if ((await answer).status() === 201) await page.locator('#signin-dialog').waitFor({ state: 'hidden' });
    else {
      console.log('# sign-ups are closed on this twin: an operator-made citizen verifies instead');
      await page.locator('#signin-id').fill(twin.accounts.citizen3.id);
      await page.locator('#signin-password').fill(twin.accounts.citizen3.password);
      await page.locator('#signin-submit').click();
      await page.locator('#signin-dialog').waitFor({ state: 'hidden' });
    }
    await page.locator('#account-toggle').waitFor();
    // the page says what it needs, with a way to the form
    const notice = page.locator('#consult-needs');
    await notice.waitFor();
    assert.equal(await page.locator('#consult-needs-email').textContent(), 'Votes, supports and survey answers here need a verified e-mail address.');
    await page.locator('#consult-needs-verify').click();
    const address = `${id}@example.fi`;
    const state = page.locator('#consult-email-state');
    await page.waitForFunction(() => document.querySelector('#consult-email-state')?.dataset.verified === 'false');
    assert.equal(await state.textContent(), 'Your account has no verified e-mail address.');
    assert.equal(await page.locator('#consult-email').getAttribute('type'), 'email');
    // the keyboard: the address, Enter sends it
    const asked = Date.now();
    await page.locator('#consult-email').fill(address);
    await page.locator('#consult-email').press('Enter');
    await page.locator('#consult-code-form').waitFor();
    assert.match(await page.locator('#consult-email-sent').textContent(), new RegExp(`on its way to ${address.replace(/\./g, '\\.')}`));
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'consult-email-code', 'the code field has the focus');
    const mail = await newestMail(twin.outbox, address, asked);
    const code = /\b(\d{6})\b/.exec(mail.text.split(/\r?\n\r?\n/).slice(1).join('\n'))?.[1];
    assert.ok(code, `a six-digit code in the message body:\n${mail.text}`);
    // a wrong code first: the tries left
    const wrong = code === '000000' ? '111111' : '000000';
    await page.locator('#consult-email-code').fill(wrong);
    await page.locator('#consult-email-verify').click();
    await page.waitForFunction(() => /Tries left/.test(document.querySelector('#consult-email-message')?.textContent ?? ''));
    assert.equal(await page.locator('#consult-email-message').textContent(), 'The code is not right. Tries left: 4.');
    assert.equal(await page.locator('#consult-email-message').getAttribute('aria-live'), 'polite');
    const v = await axe(page);
    assert.deepEqual(v, [], `the e-mail form:\n${v.map((x) => `${x.impact} ${x.id}: ${x.help} — ${x.nodes.join(', ')}`).join('\n')}`);
    await page.locator('#consult-email-code').fill(code);
    await page.locator('#consult-email-verify').click();
    await page.waitForFunction(() => document.querySelector('#consult-email-state')?.dataset.verified === 'true');
    assert.equal(await state.textContent(), `Your verified address: ${address}`);
    assert.equal(await page.locator('#consult-email-message').textContent(), `Your address ${address} is verified.`);
    assert.equal(await page.locator('#consult-code-form').count(), 0);
    // the server agrees; back on the consultation, the notice is gone
    const me = await page.evaluate(async () => (await fetch('/api/me/participation')).json());
    assert.equal(me.emailVerified, true);
    assert.equal(me.account?.email, address);
    await page.locator('#consult-back').click();
    await page.waitForFunction(() => /Verified voices/.test(document.querySelector('#consult-title')?.textContent ?? ''));
    assert.equal(await notice.isHidden(), true);
    const problems = page.problems.filter(expected).filter((p) => !/HTTP 400: .*\/api\/me\/email\/verify$/.test(p) && !/status of 400/.test(p));
    assert.deepEqual(problems, []);
    await page.context().close();
  });

  test('a citizen answers the demo consultation’s survey; the answers are kept after a reload', async (t) => {
    if (skip) return t.skip(skip);
    const demo = (await (await fetch(`${twin.url}/api/consultations`)).json()).find((c) => c.title?.en === 'Fabianinkatu for people');
    if (!demo) return t.skip('the demo seeded no consultation “Fabianinkatu for people”');
    const survey = demo.surveys?.[0];
    assert.ok(survey, 'the demo consultation has a survey');
    const page = await openApp(browser, twin.url, { hash: `?consultation=${encodeURIComponent(demo.id)}${VIEW}` });
    await page.waitForFunction(() => /Fabianinkatu for people/.test(document.querySelector('#consult-title')?.textContent ?? ''));
    await signIn(page, twin.accounts.citizen);
    await page.locator('#consult-tab-surveys').click();
    const form = page.locator(`#consult-survey-${survey.id}`);
    await form.locator('button[type="submit"]').waitFor();
    // one answer per question, by its kind: the second option, both first options, 4 of 5, a sentence
    const name = (q) => `consult-q-${survey.id}-${q.id}`;
    for (const q of survey.questions) {
      if (q.kind === 'text') await form.locator(`textarea[name="${name(q)}"]`).fill('Wider pavements, please.');
      else if (q.kind === 'scale') await form.locator(`#${name(q)}-4`).check();
      else if (q.kind === 'multiple') for (const i of [0, 1].filter((i) => i < (q.options?.length ?? 0))) await form.locator(`#${name(q)}-${i}`).check();
      else await form.locator(`#${name(q)}-${Math.min(1, (q.options?.length ?? 1) - 1)}`).check();
    }
    await form.locator('button[type="submit"]').click();
    const message = page.locator(`#consult-survey-${survey.id}-message`);
    await page.waitForFunction((sel) => /saved/.test(document.querySelector(sel)?.textContent ?? ''), `#consult-survey-${survey.id}-message`);
    assert.equal(await message.textContent(), 'Your answers are saved; you can change them while the survey is open.');
    // after a reload: the same answers, read from the server
    await page.reload();
    await page.waitForFunction(() => window.urbantwin?.ready === true);
    await page.waitForFunction(() => /Fabianinkatu for people/.test(document.querySelector('#consult-title')?.textContent ?? ''));
    await page.locator('#account-toggle').waitFor();
    await page.locator('#consult-tab-surveys').click();
    const first = survey.questions.find((q) => q.kind !== 'text');
    const firstId = first.kind === 'scale' ? `${name(first)}-4` : first.kind === 'multiple' ? `${name(first)}-0` : `${name(first)}-${Math.min(1, (first.options?.length ?? 1) - 1)}`;
    await page.waitForFunction((id) => document.getElementById(id)?.checked === true, firstId);
    for (const q of survey.questions) {
      if (q.kind === 'text') assert.equal(await form.locator(`textarea[name="${name(q)}"]`).inputValue(), 'Wider pavements, please.');
      else if (q.kind === 'scale') assert.equal(await form.locator(`#${name(q)}-4`).isChecked(), true, q.id);
      else if (q.kind === 'multiple') assert.equal(await form.locator(`#${name(q)}-0`).isChecked(), true, q.id);
      else assert.equal(await form.locator(`#${name(q)}-${Math.min(1, (q.options?.length ?? 1) - 1)}`).isChecked(), true, q.id);
    }
    const kept = await page.evaluate(async ([cid, sid]) => (await fetch(`/api/consultations/${encodeURIComponent(cid)}/surveys/${encodeURIComponent(sid)}/response`)).json(), [demo.id, survey.id]);
    assert.ok(kept.answers ?? kept, 'the server has the answers');
    assert.deepEqual(page.problems.filter(expected), []);
    await page.context().close();
  });

  test('a citizen who commented deletes their account: signed out, the comment shows as deleted to a visitor', async (t) => {
    if (skip) return t.skip(skip);
    if (!twin.accounts.leaver) return t.skip('no account to delete');
    const { id, c } = setup;
    const leaver = await apiSession(twin.accounts.leaver);
    const said = `Leaving soon, but: more trees on Fabianinkatu ${Date.now().toString(36)}.`;
    const comment = await leaver.post(c('/comments'), { body: said, stance: 'for', lang: 'en' });

    const page = await openApp(browser, twin.url, { hash: `?consultation=${encodeURIComponent(id)}${VIEW}` });
    await signIn(page, twin.accounts.leaver);
    await page.locator('#account-toggle').click();
    await page.locator('#participation-open').click();
    await page.locator('#consult-me-delete').click();
    const dialog = page.locator('#consult-delete-account');
    await dialog.waitFor();
    // a wrong password first: said, nothing deleted
    await page.locator('#consult-delete-password').fill('not-the-password');
    await page.locator('#consult-delete-account-submit').click();
    await page.waitForFunction(() => /password is wrong/.test(document.querySelector('#consult-delete-account')?.textContent ?? ''));
    await page.locator('#consult-delete-password').fill(twin.accounts.leaver.password);
    await page.locator('#consult-delete-account-submit').click();
    await dialog.waitFor({ state: 'detached' });
    await page.locator('#sign-in').waitFor();
    assert.equal(await page.locator('#account-toggle').count() === 0 || (await page.locator('#account-toggle').isHidden()), true, 'signed out');
    // said once the list of consultations, which the panel goes back to, has loaded
    await page.waitForFunction(() => /Your account is deleted/.test(document.querySelector('#consult-status')?.textContent ?? ''));
    const problems = page.problems.filter(expected).filter((p) => !/HTTP (401|403): .*\/api\/me$/.test(p) && !/status of (401|403)/.test(p));
    assert.deepEqual(problems, []);
    await page.context().close();

    // a visitor: the comment in its thread, deleted, without its text or author (pages are shared for up to 1 s)
    const anon = await openApp(browser, twin.url, { hash: `?consultation=${encodeURIComponent(id)}${VIEW}`, name: 'consultation-account-deleted-anonymous' });
    await anon.waitForFunction(() => /A car-free Fabianinkatu/.test(document.querySelector('#consult-title')?.textContent ?? ''));
    const item = anon.locator(`[data-comment="${comment.id}"]`);
    const until = Date.now() + 15_000;
    for (;;) {
      await anon.locator('#consult-tab-comments').click();
      if ((await item.count()) && (await item.getAttribute('data-state')) === 'deleted') break;
      assert.ok(Date.now() < until, `the comment ${comment.id} shows as deleted within 15 s`);
      await anon.waitForTimeout(300);
      await anon.reload();
      await anon.waitForFunction(() => window.urbantwin?.ready === true);
    }
    const text = await item.textContent();
    assert.match(text, /Deleted by its author/);
    assert.doesNotMatch(text, /more trees/);
    assert.doesNotMatch(text, new RegExp(twin.accounts.leaver.id));
    // nor can the account sign in again
    const gone = await fetch(`${twin.url}/api/auth/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ id: twin.accounts.leaver.id, password: twin.accounts.leaver.password }) });
    assert.notEqual(gone.status, 200);
    assert.deepEqual(anon.problems.filter(expected), []);
    await anon.context().close();
  });

  test('axe finds no serious or critical violations on the consultation page, signed out and signed in', async (t) => {
    if (skip) return t.skip(skip);
    const { id } = setup;
    const page = await openApp(browser, twin.url, { hash: `?consultation=${encodeURIComponent(id)}${VIEW}`, name: 'consultation-page' });
    await page.waitForFunction(() => /A car-free Fabianinkatu/.test(document.querySelector('#consult-title')?.textContent ?? ''));
    const report = (v) => v.map((x) => `${x.impact} ${x.id}: ${x.help} — ${x.nodes.join(', ')}`).join('\n');
    for (const tab of ['overview', 'comments', 'proposals', 'results']) {
      await page.locator(`#consult-tab-${tab}`).click();
      await page.waitForTimeout(300);
      const v = await axe(page);
      assert.deepEqual(v, [], `signed out, ${tab}:\n${report(v)}`);
    }
    await signIn(page, twin.accounts.citizen2);
    for (const tab of ['comments', 'proposals', 'surveys', 'overview']) {
      await page.locator(`#consult-tab-${tab}`).click();
      await page.waitForTimeout(300);
      const v = await axe(page);
      assert.deepEqual(v, [], `signed in, ${tab}:\n${report(v)}`);
    }
    // the notifications and a dialog, open
    await page.locator('#notif-toggle').click();
    await page.locator('#notif-menu').waitFor();
    let v = await axe(page);
    assert.deepEqual(v, [], `notifications:\n${report(v)}`);
    await page.keyboard.press('Escape');
    await page.locator('#consult-tab-comments').click();
    const flagButton = page.locator('#consult-comments [data-action="flag"]').first();
    if (await flagButton.count()) {
      await flagButton.click();
      await page.locator('#consult-flag').waitFor();
      v = await axe(page);
      assert.deepEqual(v, [], `the report dialog:\n${report(v)}`);
      await page.keyboard.press('Escape');
      await page.locator('#consult-flag').waitFor({ state: 'detached' });
    }
    // the screenshot of the page: the overview with the delta layer
    await page.locator('#consult-tab-overview').click();
    await page.locator('.consult-scenario button[data-scenario]').first().click();
    await page.locator('#consult-delta-legend').waitFor();
    await page.waitForFunction(() => window.urbantwin.map.querySourceFeatures('app-scenario-flows', { sourceLayer: 'TrafficFlowObserved' }).some((f) => f.properties.closed === true), null, { timeout: 30_000 });
    await mapIdle(page);
    // the README's picture of a consultation (1280×800)
    mkdirSync(join(REPO, 'docs', 'img'), { recursive: true });
    writeFileSync(join(REPO, 'docs', 'img', 'consultation.png'), await page.screenshot({ type: 'png' }));
    assert.deepEqual(page.problems.filter(expected), []);
    await page.context().close();
  });
});

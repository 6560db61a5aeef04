// @vitest-environment happy-dom
import { afterEach, describe, expect, it } from 'vitest';
import { initLang } from './i18n';
import { runMessage } from './scenarios';

const done = {
  status: 'done' as const,
  message: 'converged to a relative gap of 4.1e-16 in 32 iterations',
  summary: { converged: true, relativeGap: 4.1e-16, iterations: 32, seconds: 0.2287, unservedTrips: 0, unservedPairs: [] },
};

describe('runMessage', () => {
  afterEach(() => initLang('en'));

  it('tells a converged run from its figures, in the user’s language', () => {
    initLang('en');
    expect(runMessage(done)).toBe('The model converged (relative gap 4.1e-16) in 32 iterations and 0.23 s.');
    initLang('fi');
    expect(runMessage(done)).toBe('Malli konvergoi (suhteellinen aukko 4.1e-16) 32 iteraatiossa, 0,23 s.');
  });

  it('warns of trips cut off, of a run stopped early and of results not published', () => {
    initLang('en');
    const m = runMessage({
      status: 'done',
      summary: { converged: false, relativeGap: 0.0123, unservedTrips: 12.25, unservedPairs: [1, 2, 3], published: { error: 'disk full' } },
    });
    expect(m).toBe(
      '12.3 trips between 3 zone pairs have no route: the edits cut them off. ' +
        'The model stopped before converging (relative gap 1.2e-2): the figures are approximate. ' +
        'Its results could not be published to the map; the figures above stand.',
    );
  });

  it('passes a failure’s reason on (it names the edit at fault) and says nothing while queued or running', () => {
    initLang('en');
    expect(runMessage({ status: 'failed', message: 'edits[0] (closeStreet): no street named "X"' })).toBe(
      'The run failed: edits[0] (closeStreet): no street named "X"',
    );
    expect(runMessage({ status: 'failed' })).toBe('');
    expect(runMessage({ status: 'running', message: 'iteration 3' })).toBe('');
    expect(runMessage({ status: 'cancelled', message: 'cancelled' })).toBe('');
    expect(runMessage({ status: 'done' })).toBe('');
  });
});

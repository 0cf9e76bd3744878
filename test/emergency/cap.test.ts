import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CapError, parseCap } from '../../cloud/emergency/cap.ts';
import { decide, WarningPolicy } from '../../cloud/emergency/policy.ts';
import { check } from '../../lib/schema.ts';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/cap/${name}.xml`, import.meta.url), 'utf8');
const defaults = (() => { const r = check(WarningPolicy, {}); if (!r.ok) throw new Error('policy defaults'); return r.value; })();

function capError(name: string): CapError {
  try {
    parseCap(fixture(name));
  } catch (err) {
    if (err instanceof CapError) return err;
    throw err;
  }
  throw new Error(`${name} parsed`);
}

describe('CAP 1.2 warnings', () => {
  it('parses a typhoon warning with its event code, area and geocode', () => {
    const a = parseCap(fixture('orange-typhoon'));
    expect(a).toMatchObject({ identifier: 'GD-ZH-2026-TY-0917-001', status: 'Actual', msgType: 'Alert', sent: '2026-09-13T22:00:00.000Z' });
    expect(a.info[0]).toMatchObject({ event: '台风橙色预警信号', severity: 'Severe', eventCodes: { 'GD-SIGNAL': ['typhoon-orange'] } });
    expect(a.info[0].areas[0].geocodes['GB/T 2260']).toEqual(['440400']);
  });

  it('maps Guangdong signal colours to levels: orange is II, red is I', () => {
    expect(decide(parseCap(fixture('orange-typhoon')), defaults)).toMatchObject({ action: 'enter', level: 'II', signal: 'orange' });
    expect(decide(parseCap(fixture('update-red')), defaults)).toMatchObject({ action: 'enter', level: 'I', signal: 'red' });
  });

  it('reads an Update with the alert it references', () => {
    const a = parseCap(fixture('update-red'));
    expect(a.msgType).toBe('Update');
    expect(a.references).toEqual([{ sender: 'zhuhai.weather@gd.cma.example', identifier: 'GD-ZH-2026-TY-0917-001', sent: '2026-09-14T06:00:00+08:00' }]);
  });

  it('turns a Cancel into the identifiers it lifts', () => {
    expect(decide(parseCap(fixture('cancel')), defaults)).toEqual({ action: 'cancel', references: ['GD-ZH-2026-TY-0917-001', 'GD-ZH-2026-TY-0917-002'] });
  });

  it('ignores Test and Exercise alerts unless the policy accepts them', () => {
    expect(decide(parseCap(fixture('test-status')), defaults)).toMatchObject({ action: 'ignore', reason: expect.stringContaining('Test') });
    expect(decide(parseCap(fixture('exercise')), defaults)).toMatchObject({ action: 'ignore', reason: expect.stringContaining('Exercise') });
    expect(decide(parseCap(fixture('exercise')), { ...defaults, acceptExercise: true })).toMatchObject({ action: 'enter', level: 'II' });
  });

  it('ignores a typhoon warning for another city', () => {
    expect(decide(parseCap(fixture('other-city')), defaults)).toMatchObject({ action: 'ignore' });
  });

  it('accepts the CAP namespace under a prefix, and English signal names', () => {
    expect(decide(parseCap(fixture('prefixed-namespace')), defaults)).toMatchObject({ action: 'enter', level: 'III', signal: 'yellow' });
  });

  it('refuses a document in another namespace (CAP 1.1) with 422', () => {
    const e = capError('wrong-namespace');
    expect(e).toMatchObject({ code: 'CS_CAP_NAMESPACE', statusCode: 422 });
    expect(e.message).toContain('cap:1.1');
  });

  it('refuses XML that is not well formed with 400 and the line', () => {
    expect(capError('not-xml')).toMatchObject({ code: 'CS_CAP_NOT_XML', statusCode: 400, message: expect.stringMatching(/line \d+/) });
  });

  it('refuses a missing required element, and a value outside the CAP list, naming the element', () => {
    expect(capError('invalid-missing-identifier')).toMatchObject({ code: 'CS_CAP_INVALID', message: expect.stringContaining('alert.identifier is required') });
    expect(capError('invalid-urgency')).toMatchObject({ code: 'CS_CAP_INVALID', message: expect.stringContaining('alert.info[0].urgency is "Soon"') });
  });

  it('refuses a DOCTYPE, so no entity expansion can run (billion laughs)', () => {
    expect(capError('doctype')).toMatchObject({ code: 'CS_CAP_DOCTYPE', statusCode: 400 });
  });

  it('refuses a non-CAP XML document', () => {
    expect(() => parseCap('<feed xmlns="http://www.w3.org/2005/Atom"><title>x</title></feed>')).toThrow(/not a CAP <alert>/);
  });

  it('lifts the referenced alerts when an Update falls below an emergency level', () => {
    const white = fixture('update-red').replace(/红色/g, '白色').replace('typhoon-red', 'typhoon-white');
    expect(decide(parseCap(white), defaults)).toEqual({ action: 'cancel', references: ['GD-ZH-2026-TY-0917-001'] });
  });
});

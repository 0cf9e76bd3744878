import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runDrill } from '../../bench/drill-run.ts';
import { PG_ADMIN_URL, pgAvailable } from '../cloud/fixtures.ts';
import { REDIS_URL, redisAvailable } from '../gateway/helpers.ts';

/**
 * One of the fault drills (bench/drill-run.ts; all four: `npm run bench -- --only drills`) as a test:
 * a cluster of `citysteward cluster up` (two brokers, two workers, both demo edges) on the machine's
 * Redis and PostgreSQL; one broker is killed with SIGKILL under load. Its edge fails over to the other
 * broker; every reading acknowledged to an edge is stored once, and each known breach has one case.
 */

const redisOk = await redisAvailable();
const skip = !redisOk || !pgAvailable;
if (skip) console.warn(`[skip] fault drill: needs Redis at ${REDIS_URL} and PostgreSQL at ${PG_ADMIN_URL}`);

describe.skipIf(skip)('fault drill through the cluster', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-drill-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('SIGKILL of a broker under load: nothing acknowledged lost or doubled, no breach case missed or doubled', async () => {
    const r = await runDrill('broker', { dir, redisUrl: REDIS_URL, pgUrl: PG_ADMIN_URL, steadyS: 3, log: () => undefined });
    expect(r.acknowledged).toBeGreaterThan(200);
    expect({ lost: r.lost, duplicated: r.duplicated, missedCases: r.missedCases, duplicateCases: r.duplicateCases })
      .toEqual({ lost: 0, duplicated: 0, missedCases: 0, duplicateCases: 0 });
    expect(r.stored).toBeGreaterThanOrEqual(r.acknowledged);
  }, 420_000);
});

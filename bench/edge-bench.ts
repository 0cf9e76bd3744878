/**
 * `npm run bench -- --only edge`: the edge's Modbus side measured against physics and peers.
 * RTU pass over 32 slaves against the wire-time limit at 9,600 and 115,200 baud, with and without a
 * dead slave (bench/edge-rtu.ts); Modbus TCP points per core of edge CPU beside EMQX Neuron's
 * published figure and mbpoll, and the whole edge's memory and CPU per polled device
 * (bench/edge-tcp.ts); the section itself (bench/edge-report.ts). About 3 minutes.
 */
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { mbpollPresent, runRtu, type RtuRun } from './edge-rtu.ts';
import { cityProfiles, floatBlockProfile, runFlat, runFootprint, runMbpollTcp, type FlatRun, type FootprintRun, type MbpollTcp } from './edge-tcp.ts';
import { cpuPressure, edgeSection } from './edge-report.ts';

export { writeEdgeSection } from './edge-report.ts';

export async function edgeBench(quick: boolean, log: (s: string) => void): Promise<string> {
  const started = Date.now();
  const before = loadavg();
  const psiBefore = cpuPressure();
  const elapsed = (): string => `${((Date.now() - started) / 1000).toFixed(0)} s`;
  const rtu: RtuRun[] = [];
  if (spawnSync('socat', ['-V']).status === 0) {
    for (const baud of [9600, 115_200]) {
      log(`-- edge: RTU pass, 32 slaves, ${baud} baud (${elapsed()})`);
      const slow = baud < 19200;
      rtu.push(await runRtu(baud, quick
        ? { healthy: 2, dead: 5, mbpoll: 1 }
        : { healthy: slow ? 3 : 5, dead: slow ? 6 : 7, mbpoll: 2 }, log));
    }
  } else {
    log('-- edge: socat is not installed (Debian package socat): RTU part skipped');
  }
  const flatS = quick ? 2 : 4;
  const flat: FlatRun[] = [];
  log(`-- edge: Modbus TCP flat out, Neuron's shape (${elapsed()})`);
  flat.push(await runFlat('Neuron\'s: 1,000 contiguous float32 a device', 4, 1, [floatBlockProfile()], flatS));
  log(`-- edge: Modbus TCP flat out, the city's profiles (${elapsed()})`);
  flat.push(await runFlat('the city\'s: built-in profiles in turn', 4, 50, cityProfiles(), flatS));
  let mbpollTcp: MbpollTcp | undefined;
  if (mbpollPresent()) {
    log(`-- edge: mbpoll over Modbus TCP (${elapsed()})`);
    mbpollTcp = await runMbpollTcp(quick ? 2 : 5);
  } else {
    log('-- edge: mbpoll is not installed (Debian package mbpoll): the peer rows read n/a');
  }
  const footprint: FootprintRun[] = [];
  for (const n of quick ? [10, 100] : [10, 100, 1000]) {
    log(`-- edge: footprint, ${n} devices polled every second (${elapsed()})`);
    footprint.push(await runFootprint(n, quick ? 2 : 3, quick ? 3 : 4));
  }
  log(`-- edge: footprint, 100 devices, outbox sync normal (${elapsed()})`);
  footprint.push(await runFootprint(100, quick ? 2 : 3, quick ? 3 : 4, { sync: 'normal' }));
  const section = edgeSection({ rtu, flat, mbpollTcp, footprint, load: { before, after: loadavg(), psiBefore, psiAfter: cpuPressure() }, seconds: (Date.now() - started) / 1000 });
  log(section);
  return section;
}

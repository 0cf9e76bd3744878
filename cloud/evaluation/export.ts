import ExcelJS from 'exceljs';
import { SOURCES, type Figures, type Group, type Report } from './schemas.ts';

/**
 * The report as CSV (one row per group, the totals first) and XLSX (sheets Ranking, Cases, Report),
 * with the same columns (docs/evaluation.md#exports).
 */

type Cell = string | number | null;
interface Column { header: string; value: (g: Group) => Cell; rate?: boolean }

const FIGURES: (keyof Omit<Figures, 'cases'>)[] = ['due', 'closed', 'closedOnTime', 'closedLate', 'deferred', 'open', 'overdue', 'onTimeBase',
  'closureRate', 'onTimeRate', 'reworked', 'reworks', 'reworkRate', 'extended', 'extensionRate', 'handlingMeanHours', 'handlingP90Hours'];
const PARTS: { prefix: string; of: (g: Group) => Figures }[] = [
  { prefix: '', of: (g) => g.figures },
  { prefix: 'emergency.', of: (g) => g.emergency },
  ...SOURCES.map((s) => ({ prefix: `${s}.`, of: (g: Group) => g.bySource[s] })),
];

export function columns(report: Report): Column[] {
  return [
    { header: 'key', value: (g) => g.key },
    { header: 'name', value: (g) => g.name },
    { header: 'rank', value: (g) => g.rank },
    { header: 'score', value: (g) => g.score },
    ...(report.by === 'inspector' ? [
      { header: 'points', value: (g: Group) => g.points?.points ?? null },
      { header: 'points.registered', value: (g: Group) => g.points?.registered.count ?? null },
      { header: 'points.selfCorrected', value: (g: Group) => g.points?.selfCorrected.count ?? null },
      { header: 'points.verified', value: (g: Group) => g.points?.verified.count ?? null },
    ] : []),
    ...PARTS.flatMap(({ prefix, of }) => FIGURES.map((f) => ({ header: `${prefix}${f}`, value: (g: Group) => of(g)[f], rate: f.endsWith('Rate') }))),
    { header: 'selfCorrected', value: (g) => g.selfCorrected.count },
    { header: 'voided', value: (g) => g.voided.count },
    { header: 'dueCases', value: (g) => g.figures.cases.due.join(' ') },
  ];
}

/** A text cell that a spreadsheet would run as a formula is quoted as text. */
const safe = (v: string): string => (/^[=+\-@\t\r]/.test(v) ? `'${v}` : v);

function csvCell(v: Cell): string {
  if (v === null) return '';
  if (typeof v === 'number') return String(v);
  const s = safe(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** UTF-8 with a byte-order mark (spreadsheets then read Chinese names right), CRLF line ends. */
export function toCsv(report: Report): string {
  const cols = columns(report);
  const lines = [cols.map((c) => c.header), ...[report.totals, ...report.groups].map((g) => cols.map((c) => csvCell(c.value(g))))];
  return `\uFEFF${lines.map((l) => l.join(',')).join('\r\n')}\r\n`;
}

/** One row per counted case and group: what it counted as. */
function caseRows(report: Report): Cell[][] {
  const rows: Cell[][] = [];
  for (const g of report.groups) {
    const sets = new Map<string[], Set<string>>();
    const has = (list: string[], id: string): boolean => {
      let s = sets.get(list);
      if (!s) sets.set(list, (s = new Set(list)));
      return s.has(id);
    };
    const c = g.figures.cases;
    for (const id of c.due) {
      const outcome = has(c.deferred, id) ? 'deferred' : has(c.closedOnTime, id) ? 'on time' : has(c.closedLate, id) ? 'late' : 'open';
      const source = SOURCES.find((s) => has(g.bySource[s].cases.due, id)) ?? null;
      rows.push([g.key, id, 'due', outcome, source, has(g.emergency.cases.due, id) ? 1 : 0, has(c.closed, id) ? 1 : 0,
        has(c.overdue, id) ? 1 : 0, has(c.reworked, id) ? 1 : 0, has(c.extended, id) ? 1 : 0]);
    }
    for (const id of g.selfCorrected.cases) rows.push([g.key, id, 'self-corrected', null, null, null, 1, 0, 0, 0]);
    for (const id of g.voided.cases) rows.push([g.key, id, 'voided', null, null, null, 0, 0, 0, 0]);
  }
  return rows;
}

export async function toXlsx(report: Report): Promise<Buffer> {
  const wb = new ExcelJS.Workbook();
  wb.created = new Date(report.generatedAt);
  const cols = columns(report);
  const ranking = wb.addWorksheet('Ranking');
  ranking.addRow(cols.map((c) => c.header)).font = { bold: true };
  for (const g of [report.totals, ...report.groups]) ranking.addRow(cols.map((c) => c.value(g)));
  cols.forEach((c, i) => {
    if (c.rate) ranking.getColumn(i + 1).numFmt = '0.00%';
  });
  ranking.views = [{ state: 'frozen', xSplit: 2, ySplit: 1 }];
  const cases = wb.addWorksheet('Cases');
  cases.addRow(['group', 'case', 'counted as', 'outcome', 'source', 'emergency', 'closed', 'overdue', 'reworked', 'extended']).font = { bold: true };
  for (const r of caseRows(report)) cases.addRow(r);
  const meta = wb.addWorksheet('Report');
  for (const [k, v] of [
    ['from', report.period.from], ['to (exclusive)', report.period.to], ['month', report.period.month], ['by', report.by],
    ['scoring rules', report.rules.name], ['ranked by', report.rules.rankedBy], ['generated', report.generatedAt],
    ['cases counted', report.chain.cases], ['chain digest (heads at the period end)', report.chain.digest],
    ['chain digest (heads now)', report.chain.currentDigest], ['facts from the case row', report.fallback.cases.join(' ')],
  ] as [string, Cell][]) meta.addRow([k, v]);
  return Buffer.from(await wb.xlsx.writeBuffer());
}

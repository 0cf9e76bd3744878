import { CsvError, parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';

/**
 * CSV (RFC 4180) for the registry's bulk import and export, by csv-parse and csv-stringify: comma-separated,
 * fields with a comma, quote or line break quoted, quotes doubled, CRLF, LF or CR line ends, an optional
 * UTF-8 byte order mark, empty lines skipped. What this adds: the 1-based line each row starts on.
 */

export interface CsvRow { line: number; fields: string[] }
/** A file csv-parse refuses: the problem, the line its row starts on, the 0-based field if known, the rows before. */
export interface CsvProblem { error: string; line: number; field?: number; rows: CsvRow[] }

const PROBLEMS: Partial<Record<string, string>> = {
  CSV_QUOTE_NOT_CLOSED: 'a quoted field is not closed',
  CSV_INVALID_CLOSING_QUOTE: 'text after a closing quote',
  INVALID_OPENING_QUOTE: 'a quote inside an unquoted field',
};

/** Line numbers of byte offsets in `buf`, for offsets asked in increasing order. */
function lineCounter(buf: Buffer) {
  let pos = 0;
  let line = 1;
  const step = () => {
    if (buf[pos] === 0x0d && buf[pos + 1] === 0x0a) pos++;
    pos++;
    line++;
  };
  return {
    /** The line of the first character at or past `offset` that is not a line break. */
    startAt(offset: number): number {
      while (pos < offset) {
        if (buf[pos] === 0x0a || buf[pos] === 0x0d) step();
        else pos++;
      }
      while (buf[pos] === 0x0a || buf[pos] === 0x0d) step();
      return line;
    },
  };
}

/** Rows of fields, each with its 1-based line number (a quoted field may span lines). */
export function parseCsv(text: string): CsvRow[] | CsvProblem {
  const buf = Buffer.from(text, 'utf8');
  const lines = lineCounter(buf);
  const rows: CsvRow[] = [];
  // csv-parse's own line count takes a CRLF inside quotes for two: its byte offsets are counted here instead.
  let end = 0;
  try {
    parse(buf, {
      bom: true, record_delimiter: ['\r\n', '\n', '\r'], relax_column_count: true, skip_empty_lines: true,
      on_record: (fields: string[], info) => {
        rows.push({ line: lines.startAt(end), fields });
        end = info.bytes;
        return null;
      },
    });
  } catch (err) {
    if (!(err instanceof CsvError)) throw err;
    return { error: PROBLEMS[err.code] ?? err.message, line: lines.startAt(end), field: typeof err.index === 'number' ? err.index : undefined, rows };
  }
  return rows;
}

/** CSV text with CRLF line ends; a field is quoted when it holds a comma, quote or line break, or starts or ends with a space. */
export function writeCsvRows(rows: (string | number | null | undefined)[][]): string {
  return stringify(rows, { record_delimiter: '\r\n', quote_record_delimiter: true, quoted_match: /^\s|\s$/ });
}

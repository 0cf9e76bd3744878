import { describe, expect, it } from 'vitest';
import { parseCsv, writeCsvRows } from '../../cloud/registry/csv.ts';

/** The registry's CSV over csv-parse and csv-stringify: the line each row starts on, and the quoting of an export. */

describe('registry CSV', () => {
  it('numbers each row by the line it starts on, whatever the line ends and quoted line breaks', () => {
    const text = '\ufeffa,b\r\n1,"x\r\ny\r\nz"\n\n\r\n2,"p\nq"\r3,4\r\n5,';
    expect(parseCsv(text)).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['1', 'x\r\ny\r\nz'] },
      { line: 7, fields: ['2', 'p\nq'] },
      { line: 9, fields: ['3', '4'] },
      { line: 10, fields: ['5', ''] },
    ]);
    expect(parseCsv('')).toEqual([]);
  });

  it('names the line a refused row starts on, its field and the problem', () => {
    expect(parseCsv('a,b\n1,"two\nlines"\n\n2,"open\n3,4\n')).toMatchObject({ line: 5, field: 1, error: 'a quoted field is not closed', rows: [{ line: 1 }, { line: 2 }] });
    expect(parseCsv('a,b\n1,"x"y\n')).toMatchObject({ line: 2, field: 1, error: 'text after a closing quote' });
    expect(parseCsv('a,b\r\n1,2\r\nx"y,3\r\n')).toMatchObject({ line: 3, field: 0, error: 'a quote inside an unquoted field' });
  });

  it('quotes a field with a comma, quote or line break, or a space at either end; CRLF line ends', () => {
    expect(writeCsvRows([['a', 1, null, undefined, '', ' lead', 'trail ', 'q"q', 'c,c', 'n\nn', 'r\rr', 22.25]]))
      .toBe('a,1,,,," lead","trail ","q""q","c,c","n\nn","r\rr",22.25\r\n');
    const rows = [['id', 'note'], ['X', 'one, "two"\r\nthree']];
    expect(parseCsv(writeCsvRows(rows))).toEqual([{ line: 1, fields: rows[0] }, { line: 2, fields: rows[1] }]);
  });
});

/**
 * CSV (RFC 4180) for the registry's bulk import and export: comma-separated, fields with a comma, quote
 * or line break quoted, quotes doubled, CRLF or LF line ends, an optional UTF-8 byte order mark.
 * Small enough to own: no CSV library is a dependency of the cloud.
 */

/** Rows of fields, each with its 1-based line number (a quoted field may span lines). */
export function parseCsv(text: string): { line: number; fields: string[] }[] | { error: string; line: number } {
  const out: { line: number; fields: string[] }[] = [];
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  const n = text.length;
  while (i < n) {
    const start = line;
    const fields: string[] = [];
    for (;;) {
      let value = '';
      if (text[i] === '"') {
        i++;
        for (;;) {
          if (i >= n) return { error: 'a quoted field is not closed', line: start };
          const c = text[i];
          if (c === '"') {
            if (text[i + 1] === '"') { value += '"'; i += 2; continue; }
            i++;
            break;
          }
          if (c === '\n') line++;
          value += c;
          i++;
        }
        if (i < n && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r') return { error: 'text after a closing quote', line };
      } else {
        let j = i;
        while (j < n && text[j] !== ',' && text[j] !== '\n' && text[j] !== '\r') j++;
        value = text.slice(i, j);
        if (value.includes('"')) return { error: 'a quote inside an unquoted field', line };
        i = j;
      }
      fields.push(value);
      if (text[i] === ',') { i++; continue; }
      break;
    }
    if (text[i] === '\r') i++;
    if (text[i] === '\n') i++;
    line++;
    if (!(fields.length === 1 && fields[0] === '')) out.push({ line: start, fields });
  }
  return out;
}

const quote = (v: string): string => (/[",\r\n]/.test(v) || /^\s|\s$/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);

export function csvLine(values: (string | number | null | undefined)[]): string {
  return values.map((v) => (v === null || v === undefined ? '' : quote(String(v)))).join(',');
}

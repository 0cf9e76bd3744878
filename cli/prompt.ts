/**
 * A password read from the terminal without echo (raw mode: nothing typed is shown). Ctrl-C
 * aborts, Backspace deletes, Enter ends. Only for a TTY; callers check `process.stdin.isTTY`.
 */
/** What was typed after an Enter (a paste of two lines): the next prompt's start. */
let pending = '';

export function promptHidden(question: string, input: NodeJS.ReadStream = process.stdin, output: NodeJS.WriteStream = process.stderr): Promise<string> {
  return new Promise((resolve, reject) => {
    let value = '';
    const wasRaw = input.isRaw;
    // Raw (no echo) before the question shows: what is typed as soon as it appears is not echoed.
    input.setRawMode?.(true);
    output.write(question);
    input.resume();
    input.setEncoding('utf8');
    const done = (err?: Error) => {
      input.off('data', onData);
      input.setRawMode?.(wasRaw);
      input.pause();
      output.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: string) => {
      const chars = [...chunk];
      for (let i = 0; i < chars.length; i++) {
        const ch = chars[i];
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          pending = chars.slice(i + 1).join('').replace(/^\n/, '');
          return done();
        }
        if (ch === '\u0003') return done(new Error('aborted'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else if (ch >= ' ') value += ch;
      }
    };
    input.on('data', onData);
    if (pending) {
      const p = pending;
      pending = '';
      onData(p);
    }
  });
}

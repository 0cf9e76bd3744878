import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, logFormat, prettyStream } from '../../lib/log.ts';
import { duplicateKeys } from '../helpers/json-keys.ts';

function sink(): { stream: Writable; lines: () => string[] } {
  let text = '';
  const stream = new Writable({ write(chunk, _enc, cb) { text += chunk.toString(); cb(); } });
  return { stream, lines: () => text.split('\n').filter(Boolean) };
}

describe('log format', () => {
  it('is human-readable on a terminal and JSON lines otherwise, unless CS_LOG_FORMAT says', () => {
    expect(logFormat({}, true)).toBe('pretty');
    expect(logFormat({}, false)).toBe('json');
    expect(logFormat({ CS_LOG_FORMAT: 'json' }, true)).toBe('json');
    expect(logFormat({ CS_LOG_FORMAT: 'pretty' }, false)).toBe('pretty');
  });

  it('pretty lines name the process, service and module and carry no JSON', () => {
    const out = sink();
    const log = createLogger({ name: 'demo' }, 'pretty', prettyStream(out.stream, false));
    log.child({ svc: 'cloud' }).child({ mod: 'ingest' }).warn({ gateway: 'gw-1', reason: 'bad-json' }, 'reading rejected');
    const [line] = out.lines();
    expect(line).toContain('WARN');
    expect(line).toContain('demo/cloud/ingest [gw-1]: reading rejected');
    expect(() => JSON.parse(line)).toThrow();
  });

  it('the duplicate-key scanner finds a key bound twice (pino concatenates child bindings)', () => {
    const out = sink();
    const log = createLogger({ name: 'x' }, 'json', out.stream as never);
    log.child({ svc: 'cloud' }).child({ svc: 'http' }).info('hello');
    expect(duplicateKeys(out.lines()[0])).toEqual(['svc']);
    expect(duplicateKeys('{"a":{"b":1,"c":"b"},"b":[{"a":1},{"a":2}]}')).toEqual([]);
  });

  it('never writes a password or token', () => {
    const out = sink();
    createLogger({ name: 'x' }, 'json', out.stream as never).info({ password: 'hunter2', req: { headers: { authorization: 'Bearer cst_x' } } }, 'login');
    expect(out.lines()[0]).not.toMatch(/hunter2|cst_x/);
  });
});

describe('lazy child logger', () => {
  it('writes with its bindings, and makes no child while nothing is logged', async () => {
    const { lazyChild } = await import('../../lib/log.ts');
    const out = sink();
    const logger = createLogger({ level: 'info' }, 'json', out.stream);
    let children = 0;
    const child = logger.child.bind(logger);
    logger.child = ((...a: Parameters<typeof child>) => { children++; return child(...a); }) as typeof logger.child;
    const quiet = lazyChild(logger, { gateway: 'gw-1' });
    expect(children).toBe(0);
    void quiet;
    const log = lazyChild(logger, { gateway: 'gw-1', device: 'd-1' });
    log.warn({ seq: 3 }, 'something');
    log.info('again');
    expect(children).toBe(1);
    const lines = out.lines().map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.gateway, l.device, l.msg])).toEqual([['gw-1', 'd-1', 'something'], ['gw-1', 'd-1', 'again']]);
    expect(lines[0].seq).toBe(3);
  });
});

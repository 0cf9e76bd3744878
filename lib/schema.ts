import type { TSchema, Static } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import { FormatRegistry, Kind } from '@sinclair/typebox';

// TypeBox knows no string formats by itself; register the ones our schemas use (RFC 3339 5.6).
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-](\d{2}):(\d{2}))$/i;

/**
 * A real instant in RFC 3339 5.6 form. Date.parse alone is not enough: it rolls 2026-02-30 over to
 * March 2nd. Year 0000 is refused (RFC 3339 1: years 0000-9999 are representable, but no sensor
 * reads in 1 BC); so are hours 24 and leap seconds (no JavaScript Date can hold 23:59:60).
 */
export function isDateTime(v: string): boolean {
  const m = DATE_TIME.exec(v);
  if (!m) return false;
  const year = Number(m[1]), month = Number(m[2]), day = Number(m[3]), hour = Number(m[4]), minute = Number(m[5]), second = Number(m[6]);
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return false;
  if (hour > 23 || minute > 59 || second > 59) return false;
  if (m[9] !== undefined && (Number(m[9]) > 23 || Number(m[10]) > 59)) return false;
  return !Number.isNaN(Date.parse(v));
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

FormatRegistry.Set('date-time', isDateTime);

const compiled = new WeakMap<TSchema, TypeCheck<TSchema>>();

function checker<T extends TSchema>(schema: T): TypeCheck<T> {
  let c = compiled.get(schema);
  if (!c) {
    c = TypeCompiler.Compile(schema);
    compiled.set(schema, c);
  }
  return c as TypeCheck<T>;
}

/**
 * How a schema's defaults are filled: `keys` when they are primitive defaults of an object's own
 * properties and nothing else has one (a message schema: `quality`, `historical`), filled with a
 * loop; otherwise by TypeBox's Value.Default, which walks the whole value (its cost per message
 * showed in the ingest profile). Both give the same value.
 */
type DefaultsPlan = { keys: [string, string | number | boolean | null][] } | undefined;
const plans = new WeakMap<TSchema, DefaultsPlan>();

function hasDefaultWithin(node: unknown, depth = 0): boolean {
  if (depth > 64) return true; // deeper than any schema of ours: leave it to Value.Default
  if (Array.isArray(node)) return node.some((n) => hasDefaultWithin(n, depth + 1));
  if (node === null || typeof node !== 'object') return false;
  for (const k of Object.keys(node)) {
    if (k === 'default' || hasDefaultWithin((node as Record<string, unknown>)[k], depth + 1)) return true;
  }
  return false;
}

function defaultsPlan(schema: TSchema): DefaultsPlan {
  if (plans.has(schema)) return plans.get(schema);
  let plan: DefaultsPlan;
  if (!hasDefaultWithin(schema)) plan = { keys: [] };
  else if (schema[Kind] === 'Object' && !('default' in schema) && !hasDefaultWithin(schema.additionalProperties)) {
    const keys: [string, string | number | boolean | null][] = [];
    let simple = true;
    for (const [key, prop] of Object.entries(schema.properties as Record<string, TSchema>)) {
      if (!hasDefaultWithin(prop)) continue;
      const { default: d, ...rest } = prop;
      const primitive = d === null || ['string', 'number', 'boolean'].includes(typeof d);
      if (!('default' in prop) || !primitive || hasDefaultWithin(rest)) { simple = false; break; }
      keys.push([key, d as string | number | boolean | null]);
    }
    plan = simple ? { keys } : undefined;
  }
  plans.set(schema, plan);
  return plan;
}

/** `value` with the schema's defaults filled in place (Value.Default's result). */
function withDefaultsOf(schema: TSchema, value: unknown): unknown {
  const plan = defaultsPlan(schema);
  if (!plan) return Value.Default(schema, value);
  if (value === null || typeof value !== 'object') return value;
  const v = value as Record<string, unknown>;
  for (const [key, d] of plan.keys) if (v[key] === undefined) v[key] = d;
  return value;
}

export interface SchemaProblem {
  /** Dotted key path, e.g. `devices[3].transport.port`; `(root)` for the document itself. */
  key: string;
  message: string;
}

/** Turns a JSON pointer (`/devices/3/port`) into a key path people read (`devices[3].port`). */
export function pointerToKey(pointer: string): string {
  if (!pointer) return '(root)';
  let out = '';
  for (const part of pointer.split('/').slice(1)) {
    const p = part.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(p) ? `[${p}]` : out ? `.${p}` : p;
  }
  return out;
}

/**
 * Validates `value` against `schema` after applying its defaults.
 * Returns the value with defaults, or the first few problems, most specific first.
 */
export function check<T extends TSchema>(
  schema: T,
  value: unknown,
  opts: { owned?: boolean } = {},
): { ok: true; value: Static<T> } | { ok: false; problems: SchemaProblem[] } {
  // Defaults are filled in place: a value the caller still holds is copied first; one it just
  // parsed and hands over (`owned`, e.g. from JSON.parse on the message path) is not.
  const withDefaults = withDefaultsOf(schema, opts.owned ? value : structuredClone(value));
  const c = checker(schema);
  if (c.Check(withDefaults)) return { ok: true, value: withDefaults as Static<T> };
  const problems: SchemaProblem[] = [];
  const seen = new Set<string>();
  for (const e of c.Errors(withDefaults)) {
    const key = pointerToKey(e.path);
    const message = describe(e.message, e.schema, e.value);
    const id = `${key}:${message}`;
    if (seen.has(id)) continue;
    seen.add(id);
    problems.push({ key, message });
    if (problems.length >= 5) break;
  }
  // Deepest keys first: "devices[2].port: expected integer" says more than "devices[2]: expected object".
  problems.sort((a, b) => b.key.length - a.key.length);
  return { ok: false, problems };
}

function describe(message: string, schema: TSchema, value: unknown): string {
  if (value === undefined) return 'is required';
  if (schema.enum || schema.anyOf) {
    const options = (schema.anyOf as TSchema[] | undefined)?.map((s) => s.const).filter((x) => x !== undefined);
    if (options && options.length) return `${message}: got ${preview(value)}, expected one of ${options.map((o) => JSON.stringify(o)).join(', ')}`;
    // A union of types (number or boolean) is named by its types, not as "expected union value".
    const types = (schema.anyOf as TSchema[] | undefined)?.map((s) => s.type).filter((t): t is string => typeof t === 'string');
    if (types && types.length && types.length === (schema.anyOf as TSchema[]).length) return `expected ${types.join(' or ')}, got ${preview(value)}`;
  }
  return `${message.toLowerCase()}, got ${preview(value)}`;
}

/**
 * The start of a value as JSON, for a message. A value nested thousands deep (hostile input)
 * overflows JSON.stringify's stack: it is named by its kind instead of failing the check.
 */
export function preview(value: unknown, max = 60): string {
  try {
    return String(JSON.stringify(value)).slice(0, max);
  } catch {
    return Array.isArray(value) ? `an array of ${value.length}` : `a ${typeof value}`;
  }
}

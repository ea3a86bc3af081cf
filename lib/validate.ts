// Argument checks for every public entry point, run before any native call. Messages follow
// one pattern, "Expected <what> for <parameter> but received <value>", with a TypeError
// for a wrong type and a RangeError for a value of the right type that is out of range.
import type { Device } from './model.js';

export function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  switch (typeof value) {
    case 'number':
    case 'boolean':
    case 'bigint':
      return `${String(value)} of type ${typeof value}`;
    case 'string':
      return `"${value.length > 40 ? `${value.slice(0, 40)}...` : value}" of type string`;
    case 'function':
      return 'a function';
    case 'symbol':
      return 'a symbol';
  }
  if (Array.isArray(value)) return `an Array of length ${value.length}`;
  if (ArrayBuffer.isView(value)) {
    const view = value as unknown as { length?: number; constructor: { name: string } };
    return `${view.constructor.name} of length ${view.length ?? (value as DataView).byteLength}`;
  }
  const name = (value as object).constructor?.name;
  return name && name !== 'Object' ? `an instance of ${name}` : 'an object';
}

function message(name: string, expected: string, actual: unknown): string {
  return `Expected ${expected} for ${name} but received ${describe(actual)}`;
}

export function typeError(name: string, expected: string, actual: unknown): TypeError {
  return new TypeError(message(name, expected, actual));
}

export function rangeError(name: string, expected: string, actual: unknown): RangeError {
  return new RangeError(message(name, expected, actual));
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function number(name: string, value: unknown): number {
  if (typeof value !== 'number') throw typeError(name, 'number', value);
  return value;
}

export function finiteNumber(name: string, value: unknown): number {
  if (!Number.isFinite(number(name, value))) throw rangeError(name, 'finite number', value);
  return value as number;
}

export function positiveNumber(name: string, value: unknown): number {
  const v = number(name, value);
  if (!(Number.isFinite(v) && v > 0)) throw rangeError(name, 'positive finite number', value);
  return v;
}

export function nonNegativeNumber(name: string, value: unknown): number {
  const v = number(name, value);
  if (!(Number.isFinite(v) && v >= 0)) throw rangeError(name, 'non-negative finite number', value);
  return v;
}

// [min, max) when `openMax`, else [min, max].
export function numberInRange(name: string, value: unknown, min: number, max: number, openMax = false): number {
  const v = number(name, value);
  const inside = Number.isFinite(v) && v >= min && (openMax ? v < max : v <= max);
  if (!inside) throw rangeError(name, `number in [${min}, ${max}${openMax ? ')' : ']'}`, value);
  return v;
}

export function integer(name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = number(name, value);
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    const what =
      max < Number.MAX_SAFE_INTEGER
        ? `integer in [${min}, ${max}]`
        : min === 1
          ? 'positive integer'
          : min === 0
            ? 'non-negative integer'
            : `integer of at least ${min}`;
    throw rangeError(name, what, value);
  }
  return v;
}

export function boolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw typeError(name, 'boolean', value);
  return value;
}

export function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  const expected = `one of ${allowed.map((a) => `'${a}'`).join(', ')}`;
  if (typeof value !== 'string') throw typeError(name, expected, value);
  if (!allowed.includes(value as T)) throw rangeError(name, expected, value);
  return value as T;
}

const devicePattern = /^(cpu|cuda(:(0|[1-9][0-9]{0,9}))?)$/;

/** Whether `value` names a device: 'cpu', 'cuda' or 'cuda:N' (N below 2^31, without leading zeros). */
export function isDevice(value: unknown): value is Device {
  return typeof value === 'string' && devicePattern.test(value) && !(value.startsWith('cuda:') && Number(value.slice(5)) > 2 ** 31 - 1);
}

export function device(name: string, value: unknown): Device {
  const expected = "'cpu', 'cuda' or 'cuda:N' (N a GPU index)";
  if (typeof value !== 'string') throw typeError(name, expected, value);
  if (!isDevice(value)) throw rangeError(name, expected, value);
  return value;
}

/** The GPU index of a CUDA device ('cuda' is 0); undefined for the CPU. */
export function gpuIndex(device: Device): number | undefined {
  if (device === 'cpu') return undefined;
  return device === 'cuda' ? 0 : Number(device.slice(5));
}

export function func<T extends (...args: never[]) => unknown>(name: string, value: unknown): T {
  if (typeof value !== 'function') throw typeError(name, 'function', value);
  return value as T;
}

export function options(name: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {};
  if (!isObject(value)) throw typeError(name, 'object', value);
  return value;
}

// Rejects option names a function does not know, suggesting the one probably meant.
export function knownKeys(what: string, value: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const guess = closest(key, known);
    throw new TypeError(`Unknown option '${key}' for ${what}` + (guess ? `; did you mean '${guess}'?` : ''));
  }
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  const lower = word.toLowerCase();
  for (const candidate of candidates) {
    const c = candidate.toLowerCase();
    // A shortened name ('lrWarmup' for 'lrWarmupSteps') is as good a guess as a typo.
    const distance = c === lower ? 0 : lower.length >= 4 && c.startsWith(lower) ? 1 : editDistance(lower, c);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}

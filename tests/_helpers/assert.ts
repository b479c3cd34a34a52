/** Minimal assertions (JSR's @std/assert is not reachable from these machines). */
export class AssertionError extends Error {
  override name = "AssertionError";
}

export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new AssertionError(msg);
}

export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  const a = JSON.stringify(actual, replacer), e = JSON.stringify(expected, replacer);
  if (a !== e) throw new AssertionError(`${msg ? msg + ": " : ""}expected ${e}, got ${a}`);
}

export function assertAlmostEquals(actual: number, expected: number, tol = 1e-7, msg?: string): void {
  if (!(Math.abs(actual - expected) <= tol)) {
    throw new AssertionError(`${msg ? msg + ": " : ""}expected ${expected} ± ${tol}, got ${actual}`);
  }
}

/** |a - e| <= rtol * |e| + atol, elementwise; reports the worst element. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  rtol = 1e-5,
  atol = 0,
  msg?: string,
): void {
  if (actual.length !== expected.length) {
    throw new AssertionError(`${msg ? msg + ": " : ""}length ${actual.length} != ${expected.length}`);
  }
  let worst = -1, worstErr = 0;
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(actual[i] - expected[i]) - (rtol * Math.abs(expected[i]) + atol);
    if (!(err <= 0) && (worst < 0 || !(err <= worstErr))) {
      worst = i;
      worstErr = err;
    }
  }
  if (worst >= 0) {
    throw new AssertionError(
      `${msg ? msg + ": " : ""}element ${worst}: ${actual[worst]} vs ${
        expected[worst]
      } (rtol ${rtol}, atol ${atol})`,
    );
  }
}

export async function assertRejects(fn: () => Promise<unknown>, pattern?: RegExp | string): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    if (
      pattern && !(typeof pattern === "string" ? err.message.includes(pattern) : pattern.test(err.message))
    ) {
      throw new AssertionError(`error message '${err.message}' does not match ${pattern}`);
    }
    return err;
  }
  throw new AssertionError("expected the promise to reject");
}

export function assertThrows(fn: () => unknown, pattern?: RegExp | string): Error {
  try {
    fn();
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    if (
      pattern && !(typeof pattern === "string" ? err.message.includes(pattern) : pattern.test(err.message))
    ) {
      throw new AssertionError(`error message '${err.message}' does not match ${pattern}`);
    }
    return err;
  }
  throw new AssertionError("expected the function to throw");
}

function replacer(_k: string, v: unknown) {
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<number>);
  if (v instanceof Map) return Object.fromEntries(v);
  return v;
}

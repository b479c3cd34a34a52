/**
 * Notebook helpers: `display(...items)`, the call notebooks use to show results, and
 * `notebookSettings(defaults)`, the top cell's settings with the tests' PC_NB_* overrides.
 *
 * Deno 2.9.6's kernel can report a cell idle before that cell's last output messages have left, and a
 * frontend (JupyterLab, nbclient) then drops them. Figures and tables go out through `show` (display.ts),
 * which pauses after each display; printed lines go through the kernel's stdout forwarding, which lags
 * too (4 of 30 cells ending in `console.log` lost lines under nbclient; none with a 20 ms pause). So
 * `display` prints strings and then pauses briefly before returning.
 */
import { inJupyter, show } from "./display.ts";

/** Pause after printed lines inside Jupyter, so the kernel forwards them before the cell ends. */
export const STDOUT_FLUSH_MS = 50;

/**
 * Shows each item as its own output and returns nothing (a cell ending with it gets no stray `true`):
 * strings are printed (stdout); anything else goes to {@link show} (figures, tables, anything with a
 * Jupyter display method). Outside Jupyter everything is printed as text, so notebook code also runs
 * under `deno run`.
 */
export async function display(...items: unknown[]): Promise<void> {
  let printed = false;
  for (const item of items) {
    if (typeof item === "string") {
      console.log(item);
      printed = true;
    } else {
      await show(item, { printFallback: true });
    }
  }
  if (printed && inJupyter()) await new Promise((r) => setTimeout(r, STDOUT_FLUSH_MS));
}

/** A settings value: what the top cell of a notebook holds. */
export type SettingValue = string | number | boolean | null | readonly string[] | Record<string, unknown>;

/**
 * The settings of a notebook's top cell: `defaults`, where the environment variable `PC_NB_<KEY>` (when
 * set) replaces a key's value — how the notebook tests switch every notebook to a tiny config without
 * editing it. Users edit the defaults and leave the variables unset. A variable is read by the
 * default's type: numbers (must parse), booleans (`1`/`true`/`yes` or `0`/`false`/`no`), string lists
 * (comma-separated; give a list setting a list default such as `[] as string[]`), strings or null
 * (`null` or empty = null; a null default reads as a string); object values are never overridden.
 * Each override is printed, so a run's log says what changed.
 */
export function notebookSettings<T extends Record<string, SettingValue>>(
  defaults: T,
  env: (name: string) => string | undefined = (n) => Deno.env.get(n),
): { [K in keyof T]: Widen<T[K]> } {
  const out: Record<string, SettingValue> = { ...defaults };
  for (const [key, def] of Object.entries(defaults)) {
    const name = `PC_NB_${key}`;
    const raw = env(name);
    if (raw === undefined) continue;
    let v: SettingValue;
    if (typeof def === "number") {
      v = Number(raw);
      if (raw.trim() === "" || !Number.isFinite(v)) {
        throw new Error(`${name}=${raw}: ${key} must be a number`);
      }
    } else if (typeof def === "boolean") {
      if (/^(1|true|yes)$/i.test(raw)) v = true;
      else if (/^(0|false|no)$/i.test(raw)) v = false;
      else throw new Error(`${name}=${raw}: ${key} must be true or false`);
    } else if (Array.isArray(def)) {
      v = raw.split(",").map((s) => s.trim()).filter(Boolean);
    } else if (def !== null && typeof def === "object") {
      throw new Error(`${name}: ${key} is not a value the environment can set`);
    } else {
      v = raw === "" || raw === "null" ? null : raw;
    }
    out[key] = v;
    console.log(`${key} = ${JSON.stringify(v)} (from ${name})`);
  }
  return out as { [K in keyof T]: Widen<T[K]> };
}

/** `false` -> boolean, `"x"` -> string, `3` -> number (a setting's type, not its default's literal). */
export type Widen<V> = V extends boolean ? boolean
  : V extends string ? string
  : V extends number ? number
  : V;

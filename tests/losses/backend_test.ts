/**
 * `deno task test` runs the loss suite twice: on the `auto` backend (native in CI) and again with
 * PC_BACKEND=wasm. This says which backend a run used, and fails if it is not the one asked for.
 */
import { assertEquals } from "../_helpers/assert.ts";
import { tf } from "../../lib/backend/tf.ts";
import { initBackend } from "../../lib/backend/mod.ts";

const info = await initBackend();

Deno.test(`loss suite backend: ${info.name} (${info.detail})`, () => {
  assertEquals(tf.getBackend(), info.name);
  const asked = Deno.env.get("PC_BACKEND");
  if (asked && asked !== "auto") assertEquals(info.name, asked, `PC_BACKEND=${asked}`);
});

/**
 * Hostile configs: a config file and each `_base_` must be a regular file of bounded size; `/dev/zero`,
 * FIFOs and folders are refused with their path (and the file and key that name them) before anything
 * is read, and a file larger than the bound is refused from its size.
 */
import { join } from "node:path";
import { ConfigError, loadConfig } from "../../lib/config/mod.ts";
import { assert, assertRejects } from "../_helpers/assert.ts";
import { MINIMAL, writeFiles } from "../config/_files.ts";

async function refused(path: string, re: RegExp): Promise<void> {
  const err = await assertRejects(() => loadConfig(path), re);
  assert(err instanceof ConfigError, `${err.name}: ${err.message}`);
}

Deno.test("_base_: /dev/zero is refused by name, nothing read", async () => {
  const dir = await writeFiles({ "x.yml": "_base_: /dev/zero\n" + MINIMAL });
  await refused(
    join(dir, "x.yml"),
    new RegExp(`^${join(dir, "x.yml")}: _base_: '/dev/zero' is a character device, not a regular file$`),
  );
  await refused("/dev/zero", /^\/dev\/zero: config file is a character device, not a regular file$/);
});

Deno.test("a FIFO or a folder as _base_ or as the config is refused by name", async () => {
  const dir = await writeFiles({
    "x.yml": "_base_: [fifo.yml]\n" + MINIMAL,
    "y.yml": "_base_: sub\n",
    "sub/a": "",
  });
  assert((await new Deno.Command("mkfifo", { args: [join(dir, "fifo.yml")] }).output()).success, "mkfifo");
  await refused(
    join(dir, "x.yml"),
    /x\.yml: _base_: '.*fifo\.yml' is a named pipe \(FIFO\), not a regular file/,
  );
  await refused(join(dir, "y.yml"), /y\.yml: _base_: '.*sub' is a folder, not a regular file/);
  await refused(join(dir, "fifo.yml"), /fifo\.yml: config file is a named pipe/);
  await refused(join(dir, "sub"), /sub: config file is a folder/);
});

Deno.test("a config larger than the bound (1 MiB, PC_MAX_CONFIG_BYTES) is refused from its size", async () => {
  const big = "# padding\n".repeat(120_000) + MINIMAL; // 1.2 MB of comments
  const dir = await writeFiles({ "big.yml": big, "x.yml": "_base_: big.yml\n" });
  await refused(
    join(dir, "x.yml"),
    /x\.yml: _base_: '.*big\.yml' is 1\.1\d? MiB, larger than the bound of 1\.00 MiB.*PC_MAX_CONFIG_BYTES/,
  );
  Deno.env.set("PC_MAX_CONFIG_BYTES", "2M");
  try {
    const c = await loadConfig(join(dir, "x.yml"));
    assert(c.iters === 10, "a raised bound accepts it");
  } finally {
    Deno.env.delete("PC_MAX_CONFIG_BYTES");
  }
});

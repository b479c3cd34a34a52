/**
 * Hostile weight files: every declared size (storages, shapes x dtype, strides, offsets, header lengths,
 * decompressed sizes) is checked against the file and the memory budget BEFORE anything is allocated;
 * each failure is a WeightFileError naming the file and what is wrong; NaN/Inf weights are refused by
 * tensor name at load. Files are generated here (no binary fixtures).
 */
import * as path from "node:path";
import { initBackend } from "../../lib/backend/mod.ts";
import { buildModel } from "../../lib/models/contrast.ts";
import { modelOptionsOf } from "../../lib/run/options.ts";
import { parseWeightFile, readWeightFile } from "../../lib/models/io/read.ts";
import { encodeSafetensors } from "../../lib/models/io/safetensors.ts";
import { type RawTensor, WeightFileError } from "../../lib/models/io/tensor.ts";
import { exportWeights, loadPretrainedBytes, loadWeights, saveWeights } from "../../lib/models/weights.ts";
import { Rng } from "../../lib/util/rng.ts";
import { assert, assertEquals } from "../_helpers/assert.ts";
import { buildZip, gzip } from "../data/_archives.ts";
import { tmpDir } from "../data/_tmp.ts";
import { numpyPickle, patchZipOffset, PickleWriter, torchPickle, torchZip } from "./_hostile.ts";

/** Parses `bytes` as `name`; returns the WeightFileError (asserting its kind and that it names the file). */
async function refused(bytes: Uint8Array, name: string, re: RegExp, maxBytes?: number): Promise<string> {
  try {
    await parseWeightFile(bytes, name, { maxBytes });
  } catch (e) {
    const err = e as Error;
    assert(err instanceof WeightFileError, `${name}: ${err.name}: ${err.message}`);
    assert(err.message.startsWith(`${name}: `), `names the file: ${err.message}`);
    assert(err.cause === undefined, `${name}: an unanticipated failure (${err.message})`);
    assert(re.test(err.message), `${name}: '${err.message}' !~ ${re}`);
    return err.message;
  }
  throw new Error(`${name}: expected a refusal matching ${re}`);
}

const f32 = (...v: number[]) => new Uint8Array(new Float32Array(v).buffer);

Deno.test("a stride-0 view of 24000x24000 over a 4-byte storage is refused before allocating", async () => {
  const pth = await torchZip(
    [{ name: "w", storage: "0", numel: 1, shape: [24000, 24000], stride: [0, 0] }],
    { "0": f32(1) },
  );
  assert(pth.length < 1000, `a small file (${pth.length} bytes)`);
  await refused(
    pth,
    "stride0.pth",
    /: w: view \[24000,24000\] .*holds 576000000 elements but reads only 1 .*stride 0 on dimension 0 of size 24000/,
  );
});

Deno.test("a (2^20, 2^20) tensor is refused by name, never 'Array buffer allocation failed'", async () => {
  const pth = await torchZip(
    [{ name: "big", storage: "0", numel: 4, shape: [1 << 20, 1 << 20], stride: [1 << 20, 1] }],
    { "0": f32(1, 2, 3, 4) },
  );
  await refused(pth, "huge.pth", /big: view \[1048576,1048576\].*exceeds its storage \(16 bytes\)/);
  // the same amount declared in a .pdparams (Fortran-order numpy array over 4 bytes)
  await refused(
    numpyPickle("w", [1 << 20, 1 << 20], f32(1), true),
    "huge.pdparams",
    /needs 4398046511104 bytes.*holds 4/,
  );
});

Deno.test("tensors sharing one storage cannot exceed the memory budget; the budget is configurable", async () => {
  const storage = new Uint8Array(1 << 20);
  const specs = Array.from({ length: 8 }, (_, i) => ({
    name: `t${i}`,
    storage: "0",
    numel: 1 << 18,
    shape: [512, 512],
    stride: [512, 1],
  }));
  const pth = await torchZip(specs, { "0": storage });
  await refused(
    pth,
    "shared.pth",
    /tensor t4 \[512,512\] needs 1.00 MiB, beyond the memory budget of 4.00 MiB.*PC_MAX_WEIGHT_BYTES/,
    4 << 20,
  );
  const ok = await parseWeightFile(pth, "shared.pth", { maxBytes: 16 << 20 });
  assertEquals(ok.tensors.size, 8, "a larger budget accepts the same file");
  Deno.env.set("PC_MAX_WEIGHT_BYTES", "2M");
  try {
    await refused(pth, "shared.pth", /beyond the memory budget of 2.00 MiB/);
  } finally {
    Deno.env.delete("PC_MAX_WEIGHT_BYTES");
  }
});

Deno.test("a local header offset past the end names the file and the entry", async () => {
  const pth = await torchZip([{ name: "w", storage: "0", numel: 1, shape: [1], stride: [1] }], {
    "0": f32(1),
  });
  const bad = patchZipOffset(pth, "archive/data.pkl", 0x7fff0000);
  await refused(
    bad,
    "offset.pth",
    /local header of 'archive\/data\.pkl' at offset 2147418112 lies past the end of the file/,
  );
});

Deno.test("duplicate zip entries are refused, naming the entry", async () => {
  const pth = await torchZip(
    [{ name: "w", storage: "0", numel: 1, shape: [1], stride: [1] }],
    { "0": f32(1) },
    [{ name: "archive/data/0", data: f32(666) }],
  );
  await refused(pth, "dup.pth", /zip entry 'archive\/data\/0' appears twice/);
});

Deno.test("a deflated entry larger than the budget is refused before inflating", async () => {
  const pth = await torchZip(
    [{ name: "w", storage: "0", numel: 1, shape: [1], stride: [1] }],
    { "0": f32(1) },
  );
  // the same checkpoint, with its storage deflated and declaring 64 MiB
  const bomb = await buildZip([
    {
      name: "archive/data.pkl",
      data: torchPickle([{ name: "w", storage: "0", numel: 1 << 24, shape: [1], stride: [1] }]),
    },
    { name: "archive/data/0", data: new Uint8Array(64 << 20), method: 8 },
  ]);
  assert(bomb.length < pth.length + 100_000);
  await refused(
    bomb,
    "zipbomb.pth",
    /zip entry 'archive\/data\/0' \(inflated\) needs 64.0 MiB, beyond the memory budget/,
    8 << 20,
  );
});

Deno.test("gzip: a bomb stops at the budget; a non-weight payload stops at its first bytes", async () => {
  const payload = new Uint8Array(32 << 20);
  payload.set([0x80, 0x02, 0x7d]); // a pickle start, then zeros
  await refused(
    await gzip(payload),
    "bomb.pdparams.gz",
    /inflates to more than the memory budget of 8.00 MiB.*bomb/,
    8 << 20,
  );
  // zeros, then a corrupt trailer: only a reader that inflates everything before looking sees the corruption
  const gz = await gzip(new Uint8Array(4 << 20));
  gz[gz.length - 6] ^= 0xff;
  await refused(gz, "zeros.pth.gz", /unrecognised weight file/);
});

Deno.test("safetensors: header longer than the file, overlapping tensors, huge shapes, 5000-char names", async () => {
  const good = encodeSafetensors(
    new Map<string, RawTensor>([["a", { dtype: "float32", shape: [2], data: f32(1, 2) }]]),
  );
  const long = good.slice();
  new DataView(long.buffer).setBigUint64(0, 1_000_000n, true);
  await refused(long, "long.safetensors", /header length 1000000 exceeds the file size \(\d+ bytes\)/);
  const withHeader = (h: unknown, data: Uint8Array) => {
    const json = new TextEncoder().encode(JSON.stringify(h));
    const out = new Uint8Array(8 + json.length + data.length);
    new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
    out.set(json, 8);
    out.set(data, 8 + json.length);
    return out;
  };
  const overlap = withHeader({
    a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
    b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
  }, new Uint8Array(12));
  await refused(overlap, "overlap.safetensors", /tensors 'a' and 'b' overlap/);
  const huge = withHeader(
    { a: { dtype: "F32", shape: [1 << 20, 1 << 20], data_offsets: [0, 4] } },
    new Uint8Array(4),
  );
  await refused(
    huge,
    "huge.safetensors",
    /tensor 'a' F32\[1048576,1048576\] needs 4398046511104 bytes, has 4/,
  );
  const name = "x".repeat(5000);
  const named = withHeader({ [name]: { dtype: "F32", shape: [1], data_offsets: [0, 8] } }, new Uint8Array(4));
  const msg = await refused(
    named,
    "names.safetensors",
    /tensor 'x{80}\.\.\. \[5000 characters\]' lies at bytes 0\.\.8, past the end/,
  );
  assert(msg.length < 400, "a long name is shortened in the message");
});

Deno.test("pickles: a dict holding itself, huge integers, invalid UTF-8 give named errors", async () => {
  const self = new PickleWriter().op("}q\x00").str("a").op("h\x00s").done();
  await refused(self, "self.pdparams", /nested deeper than 100 levels .*holds itself/);
  const digits = new PickleWriter().op(`I${"9".repeat(100_000)}\n`).done();
  await refused(digits, "digits.pdparams", /integer of 100000 digits/);
  const utf = new PickleWriter().op("X\x02\x00\x00\x00\xff\xfe").done();
  await refused(utf, "utf.pdparams", /not valid UTF-8/);
});

Deno.test("a device, FIFO or folder given as a weight file is refused before reading", async () => {
  const dir = await tmpDir("pc-weights-");
  for (const [p, re] of [["/dev/zero", /character device/], [dir, /a folder/]] as const) {
    try {
      await readWeightFile(p);
      throw new Error("must fail");
    } catch (e) {
      assert(
        e instanceof WeightFileError && re.test(e.message) && e.message.includes(p),
        (e as Error).message,
      );
    }
  }
  const fifo = path.join(dir, "fifo.pdparams");
  const mk = await new Deno.Command("mkfifo", { args: [fifo] }).output();
  assert(mk.success, "mkfifo");
  try {
    await readWeightFile(fifo);
    throw new Error("must fail");
  } catch (e) {
    assert(e instanceof WeightFileError && /named pipe \(FIFO\)/.test(e.message), (e as Error).message);
  }
});

await initBackend();

Deno.test("NaN and Inf weights are refused at load, by tensor name", async () => {
  const model = buildModel(modelOptionsOf({ backbone: "HRNet_Tiny", numClasses: 3, projDim: 8 }), new Rng(0));
  try {
    const w = await exportWeights(model);
    const names = [...w.keys()];
    const poison = (k: string, v: number) => {
      const t = w.get(k)!;
      const f = new Float32Array(t.data.slice().buffer);
      f[0] = v;
      f[1] = v;
      w.set(k, { ...t, data: new Uint8Array(f.buffer) });
    };
    poison(names[3], NaN);
    poison(names[7], -Infinity);
    const file = encodeSafetensors(w, { layout: "HWIO" });
    let msg = "";
    try {
      await loadPretrainedBytes(model, file, "nan.safetensors", { log: () => {} });
    } catch (e) {
      msg = (e as Error).message;
    }
    assert(/nan\.safetensors: 2 tensor\(s\) hold NaN or infinite values/.test(msg), msg);
    assert(msg.includes(`'${names[3]}' (2 NaN, 0 Inf`) && msg.includes(`'${names[7]}' (0 NaN, 2 Inf`), msg);
    // our own checkpoints too (what resume and `val` load)
    const dir = await tmpDir("pc-weights-");
    await saveWeights(model, path.join(dir, "m.safetensors"));
    const own = await Deno.readFile(path.join(dir, "m.safetensors"));
    const hdr = Number(new DataView(own.buffer).getBigUint64(0, true));
    new DataView(own.buffer).setFloat32(8 + hdr, NaN, true); // the first value of the first tensor
    await Deno.writeFile(path.join(dir, "m.safetensors"), own);
    let own2 = "";
    await loadWeights(model, path.join(dir, "m.safetensors")).catch((e) => (own2 = e.message));
    assert(/m\.safetensors: 1 tensor\(s\) hold NaN/.test(own2), own2);
  } finally {
    model.dispose();
  }
});

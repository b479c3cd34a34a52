/**
 * Weight-file readers: safe pickle subset (hostile pickles rejected), numpy arrays in .pdparams pickles
 * (protocols 2/4/5, Fortran order, big-endian, float16), PyTorch zip and legacy .pth layouts, safetensors.
 * Fixtures in tests/fixtures/paddle_model/io were written by make_io_fixtures.py with Python's pickle.
 */
import { unpickle, UnsafePickleError } from "../../lib/models/io/pickle.ts";
import { NUMPY_GLOBALS } from "../../lib/models/io/numpy.ts";
import { parseWeightFile } from "../../lib/models/io/read.ts";
import { encodeSafetensors, readSafetensors, writeSafetensors } from "../../lib/models/io/safetensors.ts";
import { type RawTensor, toFloat32 } from "../../lib/models/io/tensor.ts";
import { assert, assertClose, assertEquals } from "../_helpers/assert.ts";

const IO = new URL("../fixtures/paddle_model/io/", import.meta.url);
const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

async function rejects(
  p: Promise<unknown> | (() => unknown),
  pattern: RegExp,
  cls?: new (...a: never[]) => Error,
) {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    if (cls) {
      assert(e instanceof cls, `expected ${cls.name}, got ${(e as Error).name}: ${(e as Error).message}`);
    }
    assert(
      pattern.test((e as Error).message),
      `error message ${JSON.stringify((e as Error).message)} !~ ${pattern}`,
    );
    return;
  }
  throw new Error(`expected a rejection matching ${pattern}`);
}

// ---- hostile pickles: each would run a command under Python's pickle.load
const HOSTILE: [string, string, RegExp][] = [
  ["protocol 0 os.system", "cos\nsystem\n(S'touch /tmp/pwned'\ntR.", /os\.system/],
  [
    "protocol 2 posix.system",
    "\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.",
    /posix\.system/,
  ],
  [
    "protocol 4 STACK_GLOBAL builtins.eval",
    "\x80\x04\x8c\x08builtins\x94\x8c\x04eval\x94\x93\x94\x8c\x0bprint('hi')\x94\x85\x94R\x94.",
    /builtins\.eval/,
  ],
  [
    "subprocess.Popen hidden in a dict value",
    "\x80\x02}q\x00X\x06\x00\x00\x00weightq\x01csubprocess\nPopen\nq\x02X\x02\x00\x00\x00lsq\x03\x85q\x04Rq\x05s.",
    /subprocess\.Popen/,
  ],
  ["INST opcode", "(S'ls'\nios\nsystem\n.", /os\.system/],
  ["getattr gadget", "\x80\x02c__builtin__\ngetattr\nq\x00.", /__builtin__\.getattr/],
];

for (const [label, bytes, pattern] of HOSTILE) {
  Deno.test(`hostile pickle rejected: ${label}`, async () => {
    await rejects(parseWeightFile(latin1(bytes), "evil.pdparams"), pattern, UnsafePickleError);
    await rejects(parseWeightFile(latin1(bytes), "evil.pdparams"), /evil\.pdparams: refusing to load global/);
  });
}

Deno.test("allowed token globals cannot be called, unknown opcodes are rejected", async () => {
  // numpy.ndarray is allowed only as an argument of _reconstruct, never as a callable
  await rejects(
    () => unpickle(latin1("\x80\x02cnumpy\nndarray\n)R."), { source: "t", globals: NUMPY_GLOBALS }),
    /numpy\.ndarray' may not be called/,
    UnsafePickleError,
  );
  // EXT1 (extension registry) is outside the supported subset
  await rejects(
    () => unpickle(latin1("\x80\x02\x82\x01."), { source: "t", globals: NUMPY_GLOBALS }),
    /unsupported pickle opcode 0x82/,
    UnsafePickleError,
  );
  // persistent ids are refused for numpy pickles
  await rejects(
    () => unpickle(latin1("\x80\x02X\x01\x00\x00\x00aQ."), { source: "t", globals: NUMPY_GLOBALS }),
    /persistent ids are not supported/,
  );
});

interface Expected {
  [k: string]: { dtype: string; shape: number[]; values: number[] } | Record<string, number[]>;
}

function values(t: RawTensor): number[] {
  return Array.from(toFloat32(t));
}

for (const file of ["np_p2.pdparams", "np_p4.pdparams", "np_p5.pkl"]) {
  Deno.test(`numpy arrays from a Python pickle (${file})`, async () => {
    const exp = JSON.parse(await Deno.readTextFile(new URL("expected.json", IO))) as Expected;
    const wf = await parseWeightFile(await Deno.readFile(new URL(file, IO)), file);
    assertEquals(wf.format, "paddle");
    assertEquals(wf.layout, "OIHW");
    assertEquals([...wf.tensors.keys()].sort(), ["bigendian", "conv.weight", "fortran64", "half", "steps"]);
    for (const k of ["conv.weight", "fortran64", "bigendian", "half", "steps"]) {
      const e = exp[k] as { dtype: string; shape: number[]; values: number[] };
      const t = wf.tensors.get(k)!;
      assertEquals(t.shape, e.shape, `${k} shape`);
      assertClose(values(t), e.values.map((v) => Math.fround(v)), 0, 0, `${k} values`);
    }
    assertEquals(wf.tensors.get("half")!.dtype, "float16");
    assertEquals(wf.tensors.get("fortran64")!.dtype, "float64");
  });
}

for (const file of ["torch_zip.pth", "torch_legacy.pth"]) {
  Deno.test(`PyTorch checkpoint layout (${file}): storages, offsets, strides, nested dicts`, async () => {
    const exp = (JSON.parse(await Deno.readTextFile(new URL("expected.json", IO))) as Expected)
      .torch as Record<
        string,
        number[]
      >;
    const wf = await parseWeightFile(await Deno.readFile(new URL(file, IO)), file);
    assertEquals(wf.format, "torch");
    assertEquals(
      [...wf.tensors.keys()].sort(),
      [
        "state_dict.module.bn.num_batches_tracked",
        "state_dict.module.conv.weight",
        "state_dict.module.offset_view",
        "state_dict.module.transposed",
      ],
    );
    const conv = wf.tensors.get("state_dict.module.conv.weight")!;
    assertEquals(conv.shape, [2, 3, 3, 3]);
    assertClose(values(conv), exp["conv.weight"].map(Math.fround), 0, 0, "conv.weight");
    const tr = wf.tensors.get("state_dict.module.transposed")!;
    assertEquals(tr.shape, [4, 3]);
    assertEquals(values(tr), exp.transposed, "strided (transposed) view gathered in C order");
    assertEquals(
      values(wf.tensors.get("state_dict.module.offset_view")!),
      exp.offset_view,
      "offset + stride 2",
    );
    const nbt = wf.tensors.get("state_dict.module.bn.num_batches_tracked")!;
    assertEquals([nbt.dtype, nbt.shape, values(nbt)], ["int64", [], [8]]);
  });
}

Deno.test("safetensors: encode/read round trip, metadata, alignment, atomic write", async () => {
  const a: RawTensor = {
    dtype: "float32",
    shape: [2, 2],
    data: new Uint8Array(new Float32Array([1, -2, 3.5, 4]).buffer),
  };
  const b: RawTensor = { dtype: "int64", shape: [1], data: new Uint8Array(new BigInt64Array([5n]).buffer) };
  const bytes = encodeSafetensors([["w.a", a], ["b", b]], { format: "x", note: "ü" });
  const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assertEquals((8 + headerLen) % 8, 0, "tensor data starts 8-byte aligned");
  const back = readSafetensors(bytes, "mem");
  assertEquals(back.metadata, { format: "x", note: "ü" });
  assertEquals(values(back.tensors.get("w.a")!), [1, -2, 3.5, 4]);
  assertEquals(back.tensors.get("b")!.dtype, "int64");

  const dir = await Deno.makeTempDir();
  const path = `${dir}/w.safetensors`;
  await writeSafetensors(path, [["w.a", a]], {});
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["w.safetensors"], "no temporary file left");
  assertEquals(values(readSafetensors(await Deno.readFile(path), path).tensors.get("w.a")!), [1, -2, 3.5, 4]);
  await Deno.remove(dir, { recursive: true });

  const bad = bytes.slice();
  bad[9] = 0x21; // corrupt the JSON
  await rejects(
    () => readSafetensors(bad, "bad.safetensors"),
    /bad\.safetensors: safetensors header is not valid JSON/,
  );
});

/**
 * Weight import semantics: PaddleSeg naming (identity) and PyTorch naming (official HRNet /
 * ContrastiveSeg) with OIHW -> HWIO transposes, container prefixes, backbone-only ImageNet loading,
 * missing / unexpected / shape-mismatched tensors reported by name, and loud failure below the share.
 */
import { tf } from "../../lib/backend/tf.ts";
import { initBackend } from "../../lib/backend/mod.ts";
import { buildModel, type ModelOptions, paramGroup, type SegModel } from "../../lib/models/contrast.ts";
import { modelOptionsOf } from "../../lib/run/options.ts";
import { encodeSafetensors } from "../../lib/models/io/safetensors.ts";
import type { RawTensor } from "../../lib/models/io/tensor.ts";
import { exportWeights, loadPretrainedBytes } from "../../lib/models/weights.ts";
import { Rng } from "../../lib/util/rng.ts";
import { assert, assertEquals } from "../_helpers/assert.ts";

await initBackend();

const TINY: ModelOptions = modelOptionsOf({ backbone: "HRNet_Tiny", numClasses: 3, projDim: 8 });

/** A model's weights renamed and laid out like a foreign checkpoint (conv weights OIHW). */
function foreignWeights(model: SegModel, rename: (name: string, torchName: string) => string | null) {
  const out = new Map<string, RawTensor>();
  for (const p of model.store.params) {
    const k = rename(p.spec.name, p.spec.torchName);
    if (k === null) continue;
    const data = tf.tidy(() => {
      const v = p.spec.role === "conv_weight" ? tf.transpose(p.value, [3, 2, 0, 1]) : p.value;
      return v.dataSync() as Float32Array;
    });
    const s = p.spec.shape;
    out.set(k, {
      dtype: "float32",
      shape: p.spec.role === "conv_weight" ? [s[3], s[2], s[0], s[1]] : s,
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
  }
  return out;
}

/** safetensors without our layout tag: read as a foreign (OIHW) file. */
const asFile = (m: Map<string, RawTensor>) => encodeSafetensors(m);

function sameWeights(a: SegModel, b: SegModel, filter: (name: string) => boolean): boolean {
  const wb = b.namedWeights();
  for (const [k, v] of a.namedWeights()) {
    if (!filter(k)) continue;
    const eq = tf.tidy(() => tf.all(tf.equal(v, wb.get(k)!)).dataSync()[0]);
    if (!eq) return false;
  }
  return true;
}

async function message(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as Error).message;
  }
  return "";
}

Deno.test("PyTorch naming (ContrastiveSeg checkpoint: state_dict + module. prefix) with OIHW transposes", async () => {
  const src = buildModel(TINY, new Rng(1));
  const file = foreignWeights(
    src,
    (name, torch) => `module.${paramGroup(name) === "backbone" ? "backbone." : ""}${torch}`,
  );
  // bookkeeping tensors real PyTorch checkpoints carry are ignored
  file.set("module.backbone.bn1.num_batches_tracked", { dtype: "int64", shape: [], data: new Uint8Array(8) });
  const dst = buildModel(TINY, new Rng(2));
  const lines: string[] = [];
  const r = await loadPretrainedBytes(dst, asFile(file), "contrast.pth", { log: (l) => lines.push(l) });
  assertEquals([r.naming, r.prefix, r.missing, r.unexpected, r.mismatched], ["torch", "module.", [], [], []]);
  const total = [...src.namedWeights().values()].reduce((a, v) => a + v.size, 0);
  assert(lines[0].startsWith(`matched 280/280 tensors (${total.toLocaleString("en-US")} params`), lines[0]);
  assert(sameWeights(src, dst, () => true), "every tensor arrives, conv weights transposed back to HWIO");
  const x = tf.randomNormal([1, 32, 32, 3], 0, 1, "float32", 1) as tf.Tensor4D;
  const [a, b] = [src.predict(x), dst.predict(x)];
  assertEquals(tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]), 0);
  tf.dispose([x, a, b]);
  src.dispose();
  dst.dispose();
});

Deno.test("REPRO naming (the seed's fork: plain Sequential heads cls_head.0/1/4, proj_head.proj.0/1/3)", async () => {
  const src = buildModel(TINY, new Rng(1));
  const repro: [RegExp, string][] = [
    [/^cls_head\.0\._conv\./, "cls_head.0."],
    [/^cls_head\.0\._batch_norm\./, "cls_head.1."],
    [/^cls_head\.2\./, "cls_head.4."],
    [/^proj_head\.proj\.0\._conv\./, "proj_head.proj.0."],
    [/^proj_head\.proj\.0\._batch_norm\./, "proj_head.proj.1."],
    [/^proj_head\.proj\.1\./, "proj_head.proj.3."],
  ];
  const toRepro = (n: string) => {
    const rule = repro.find(([re]) => re.test(n));
    return rule ? n.replace(rule[0], rule[1]) : n;
  };
  const file = foreignWeights(src, toRepro);
  assert(
    file.has("cls_head.4.weight") && file.has("proj_head.proj.3.bias") && file.has("cls_head.1._variance"),
  );
  const dst = buildModel(TINY, new Rng(2));
  const r = await loadPretrainedBytes(dst, asFile(file), "repro_82.47.pdparams", { log: () => {} });
  assertEquals([r.naming, r.missing, r.unexpected], ["repro", [], []]);
  assert(sameWeights(src, dst, () => true));
  src.dispose();
  dst.dispose();
});

Deno.test("backbone-only import: official HRNet ImageNet names (no prefix) and PaddleSeg SSLD names", async () => {
  const src = buildModel(TINY, new Rng(1));
  const cases: [string, (n: string, t: string) => string | null][] = [
    ["hrnetv2_imagenet.pth", (n, t) => (paramGroup(n) === "backbone" ? t : null)],
    ["hrnet_ssld.pdparams", (n) => (paramGroup(n) === "backbone" ? n.replace(/^backbone\./, "") : null)],
  ];
  for (const [label, rename] of cases) {
    const file = foreignWeights(src, rename);
    // classification-only parts of ImageNet checkpoints are reported as unexpected, not loaded
    file.set("classifier.weight", { dtype: "float32", shape: [2, 2], data: new Uint8Array(16) });
    file.set("incre_modules.0.0.conv1.weight", { dtype: "float32", shape: [1], data: new Uint8Array(4) });
    const dst = buildModel(TINY, new Rng(2));
    const init = buildModel(TINY, new Rng(2));
    const lines: string[] = [];
    const r = await loadPretrainedBytes(dst, asFile(file), label, {
      scope: "backbone",
      log: (l) => lines.push(l),
    });
    const nb = src.store.params.filter((p) => paramGroup(p.spec.name) === "backbone").length;
    assertEquals([r.matched.length, r.expected, r.missing.length], [nb, nb, 0], label);
    assertEquals(r.unexpected.sort(), ["classifier.weight", "incre_modules.0.0.conv1.weight"], label);
    assert(lines.some((l) => l.includes("unexpected in file (2): classifier.weight")), lines.join("\n"));
    assert(sameWeights(src, dst, (n) => paramGroup(n) === "backbone"), `${label}: backbone loaded`);
    assert(sameWeights(init, dst, (n) => paramGroup(n) !== "backbone"), `${label}: heads keep their init`);
    dst.dispose();
    init.dispose();
  }
  src.dispose();
});

Deno.test("shape mismatch is reported by tensor name and fails at the default share; a lower share accepts it", async () => {
  const src = buildModel(modelOptionsOf({ ...TINY, numClasses: 4 }), new Rng(1));
  const bytes = asFile(foreignWeights(src, (n) => n)); // PaddleSeg names, 4 classes
  const dst = buildModel(TINY, new Rng(2)); // 3 classes
  const msg = await message(loadPretrainedBytes(dst, bytes, "city19.pdparams", { log: () => {} }));
  assert(/matched only 279\/280 tensors/.test(msg), msg);
  assert(
    /shape mismatch \(1\): cls_head\.2\.weight \(file 'cls_head\.2\.weight' \[4,60,1,1\] vs model \[3,60,1,1\]\)/
      .test(msg),
    msg,
  );
  const r = await loadPretrainedBytes(dst, bytes, "city19.pdparams", {
    minMatchedShare: 0.99,
    log: () => {},
  });
  assertEquals(r.mismatched.map((m) => m.name), ["cls_head.2.weight"]);
  assert(sameWeights(src, dst, (n) => n !== "cls_head.2.weight"), "everything else loaded");
  src.dispose();
  dst.dispose();
});

Deno.test("a file that does not fit fails loudly with the matched count; missing tensors are named", async () => {
  const dst = buildModel(TINY, new Rng(2));
  const unrelated = new Map<string, RawTensor>([["fc.weight", {
    dtype: "float32",
    shape: [1],
    data: new Uint8Array(4),
  }]]);
  const msg = await message(loadPretrainedBytes(dst, asFile(unrelated), "resnet50.pth", { log: () => {} }));
  assert(
    /matched only 0\/280 tensors/.test(msg) &&
      /missing \(280\): backbone\.conv_layer1_1\._conv\.weight/.test(msg),
    msg,
  );
  // a CE-only checkpoint lacks the projection head: the contrast model names what is missing
  const ce = buildModel(modelOptionsOf({ ...TINY, type: "HRNetCE" }), new Rng(3));
  const msg2 = await message(
    loadPretrainedBytes(dst, asFile(foreignWeights(ce, (n) => n)), "ce.pdparams", { log: () => {} }),
  );
  assert(
    /matched only 272\/280/.test(msg2) && /missing \(8\): proj_head\.proj\.0\._conv\.weight/.test(msg2),
    msg2,
  );
  ce.dispose();
  dst.dispose();
});

Deno.test("exportWeights gives every tensor in our layout, BN running statistics included", async () => {
  const m = buildModel(TINY, new Rng(5));
  const w = await exportWeights(m);
  assertEquals(w.size, m.store.params.length);
  const t = w.get("backbone.conv_layer1_1._batch_norm._variance")!;
  assertEquals([t.dtype, t.shape], ["float32", [16]]);
  assertEquals(w.get("cls_head.2.weight")!.shape, [1, 1, 60, 3]);
  m.dispose();
});

/**
 * `deno task summary` prints the exact HRNet-W48 counts of docs/method.md §1.4 (G10), from flags and from the
 * W48 contrast config.
 */
import { SegModel } from "../../lib/models/contrast.ts";
import { modelOptionsOf } from "../../lib/run/options.ts";
import { summarize } from "../../lib/models/summary.ts";
import { assert } from "../_helpers/assert.ts";

const ROOT = new URL("../../", import.meta.url);

async function runSummary(args: string[]): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "lib/cli/summary.ts", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert(out.code === 0, `summary exited ${out.code}: ${new TextDecoder().decode(out.stderr)}`);
  return text;
}

function assertW48Counts(text: string) {
  for (
    const line of [
      "Trainable params: backbone 65,325,120 (1525 tensors), seg head 4,681,440, proj head 1,039,680; total 71,046,240",
      "Total params (paddle.flops convention: eval mode, no proj head, BN running stats included): 70,092,096",
    ]
  ) assert(text.includes(line), `missing line '${line}' in:\n${text}`);
  assert(/^backbone\.st4\s+144\s+144\s+47,624,256\s+48,960$/m.test(text), "stage-4 row of the layer table");
}

Deno.test("summary CLI from flags: exact HRNet-W48 counts", async () => {
  assertW48Counts(await runSummary(["--backbone", "HRNet_W48", "--num_classes", "19", "--proj_dim", "720"]));
});

Deno.test("summary CLI from the W48 contrast config", async () => {
  assertW48Counts(
    await runSummary([
      "--config",
      "configs/hrnet_w48_contrast/hrnet_w48_contrast_cityscapes_1024x512_60k.yml",
    ]),
  );
});

Deno.test("summary --full lists every tensor; the CE-only model has no projection head", () => {
  const m = new SegModel(modelOptionsOf({ type: "HRNetCE", backbone: "HRNet_W48", numClasses: 19 }), {
    materialise: false,
  });
  const text = summarize(m, { full: true });
  assert(
    text.includes("backbone.st4.stage_st4_3.fuse_func.residual_st4_3_layer_4_3_1._batch_norm._variance"),
  );
  assert(!text.includes("proj_head"), "no projection head in the CE-only model");
  assert(text.includes("seg head 4,681,440; total 70,006,560"), text.split("\n").slice(-3).join("\n"));
  assert(
    text.includes("BN running stats included): 70,092,096"),
    "same paddle.flops total as the contrast model",
  );
});

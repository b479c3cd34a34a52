/** The commands of an export (printed by the CLI) and the README.md written beside config.yml. */
import type { Translation } from "./paddleseg.ts";

export interface ExportFacts {
  /** Our config, as given to the export. */
  configPath: string;
  /** The export folder, as given (the commands use it as typed). */
  outDir: string;
  /** PaddleSeg's --save_dir of the printed commands. */
  saveDir: string;
  /** What model.pdparams holds, or null when none was written. */
  weights: { source: string; tensors: number } | null;
  cwd: string;
}

const q = (s: string) => (/^[\w./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
const cmd = (parts: string[]) => parts.map(q).join(" ");

export interface ExportCommands {
  oneGpu: string;
  fourGpus: string;
  driver: string;
  driverFourGpus: string;
  cpuProcesses: string;
  val: string;
  driverVal: string;
  back: string[];
}

export function exportCommands(t: Translation, x: ExportFacts): ExportCommands {
  const cfg = `${x.outDir}/config.yml`;
  const best = `${x.saveDir}/best_model`;
  const train = ["--config", cfg, ...t.trainFlags];
  const val = ["--config", cfg, "--model_path", `${best}/model.pdparams`, ...t.valFlags];
  return {
    oneGpu: `python $PADDLESEG/tools/train.py ${cmd(train)}`,
    fourGpus: `python -m paddle.distributed.launch --gpus 0,1,2,3 $PADDLESEG/tools/train.py ${cmd(train)}`,
    driver: `python scripts/paddleseg/train.py ${cmd(train)}`,
    driverFourGpus: `python -m paddle.distributed.launch --gpus 0,1,2,3 scripts/paddleseg/train.py ${
      cmd(train)
    }`,
    cpuProcesses: "PADDLE_DISTRI_BACKEND=gloo python -m paddle.distributed.launch --nproc_per_node 2 " +
      `scripts/paddleseg/train.py ${cmd([...train, "--device", "cpu"])}`,
    val: `python $PADDLESEG/tools/val.py ${cmd(val)}`,
    driverVal: `python scripts/paddleseg/val.py ${cmd(val)}`,
    back: [
      `deno task val ${cmd(["--config", x.configPath, "--model_path", best])}`,
      `deno task predict ${
        cmd([
          "--config",
          x.configPath,
          "--model_path",
          best,
          "--image_path",
          "IMAGE_OR_FOLDER",
          "--save_dir",
          `${x.saveDir}/predict`,
        ])
      }`,
      `deno task viz embed ${cmd(["--config", x.configPath, "--model_path", best])}`,
    ],
  };
}

export function exportReadme(t: Translation, x: ExportFacts): string {
  const c = exportCommands(t, x);
  const bullet = (xs: string[]) => xs.map((s) => `- ${s}`).join("\n");
  const weights = x.weights
    ? `- \`model.pdparams\`: the weights of \`${x.weights.source}\` (${x.weights.tensors} tensors, BN running ` +
      "statistics included, float32), which `model.pretrained` loads before training"
    : "- no `model.pdparams`: PaddleSeg initialises the model itself (pass `--model_path` to the export to " +
      "start from a checkpoint of ours)";
  return `# PaddleSeg export of \`${x.configPath}\`

Written by \`deno task export --config ${x.configPath} --to paddleseg --out ${x.outDir}\`.

- \`config.yml\`: a PaddleSeg 2.8 config, read unchanged by PaddleSeg's \`tools/train.py\` and \`tools/val.py\`
${weights}

Paths in \`config.yml\` (datasets, weights) are relative to the folder the export ran in
(\`${x.cwd}\`), as PaddleSeg takes them relative to the working directory: run every command below from
there. \`$PADDLESEG\` is a PaddleSeg checkout.

## Train

One GPU:

    ${c.oneGpu}

Four GPUs (\`batch_size\` is per GPU, so the effective batch is ${t.config.batch_size} x 4; with several GPUs
\`tools/train.py\` synchronises BatchNorm across them):

    ${c.fourGpus}

Without a PaddleSeg checkout (\`pip install paddleseg==2.8.0\` and PaddlePaddle >= 2.6, or
\`deno task setup --only paddle\` for the CPU build in \`.cache/paddle\`), this repository's driver takes the
same flags:

    ${c.driver}
    ${c.driverFourGpus}

Several CPU processes (what the test suite runs, on a tiny config):

    ${c.cpuProcesses}

The PaddleSeg 2.8.0 code on PyPI (and the v2.8.0 tag) stops at its first log line and at its first
evaluation on Paddle >= 2.5 (0-D tensors; fixed on PaddleSeg's release/2.8 branch): use that branch, or the
driver, which applies the two fixes (\`scripts/paddleseg/_compat.py\`).

Checkpoints: \`${x.saveDir}/iter_N/model.pdparams\` and, with \`--do_eval\`, \`${x.saveDir}/best_model/model.pdparams\`.

## Evaluate with PaddleSeg

    ${c.val}
    ${c.driverVal}

## Back to this project

The PaddleSeg folders open wherever a checkpoint does (the import report says how many tensors matched):

    ${c.back.join("\n    ")}

and in notebooks 03 and 04 with \`MODEL_PATH\` (\`CONTRAST_MODEL\` / \`CE_MODEL\`) set to \`${x.saveDir}/best_model\`.

## What the translation changed

${bullet(t.notes)}

Not needed by PaddleSeg's run:

${bullet(t.dropped.map((d) => `\`${d.key}\`: ${d.why}`))}
`;
}

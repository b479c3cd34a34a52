/**
 * Set-up step `paddle`: PaddlePaddle (CPU) + PaddleSeg in the project-local virtual environment
 * `.cache/paddle`, from the fully pinned `scripts/paddleseg/requirements.txt` (about 1.3 GB, a minute on a
 * fast link). Needed by the PaddleSeg tests (tests/export/: export, agreement, distributed training) and
 * the PaddleSeg baselines of `deno task bench`, which share this one environment and this one function.
 *
 * Idempotent: a stamp in the venv records the requirements' SHA-256 and the interpreter version; a second
 * run costs one process start. The interpreter is `$PC_PYTHON` when set, else `python3` (3.8–3.12: the
 * Python versions paddlepaddle 2.6.2 has wheels for).
 *
 * Importing paddle before cv2 crashes (zlib, inflateReset2) with these wheels, and PaddleSeg imports cv2
 * after paddle: a `sitecustomize.py` in the venv imports cv2 first in every process, launched workers
 * of `paddle.distributed.launch` included.
 */
import { join } from "node:path";
import { ensureVenv, output } from "./python.ts";
import type { SetupContext, SetupStep } from "./steps.ts";

/** The venv, relative to the project root. */
export const PADDLE_VENV = join(".cache", "paddle");
export const PADDLE_REQUIREMENTS = join("scripts", "paddleseg", "requirements.txt");

const SITECUSTOMIZE =
  "# written by scripts/setup/paddle.ts: cv2 before paddle (importing paddle first crashes in zlib)\n" +
  "try:\n    import cv2  # noqa: F401\nexcept Exception:\n    pass\n";

/** The venv's Python (absolute). */
export function paddlePython(root: string): string {
  return join(root, PADDLE_VENV, "bin", "python");
}

async function writeSitecustomize(py: string): Promise<void> {
  const r = await output(py, ["-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]);
  if (!r.ok) throw new Error(`cannot locate site-packages of ${py}: ${r.text}`);
  await Deno.writeTextFile(join(r.text.trim().split("\n").pop()!, "sitecustomize.py"), SITECUSTOMIZE);
}

/**
 * Makes sure `.cache/paddle` has the pinned packages; returns true when it installed something.
 * Throws with pip's output tail (or the failing import) when it cannot.
 */
export function ensurePaddleEnv(root: string, log: (msg: string) => void): Promise<boolean> {
  return ensureVenv(root, {
    step: "paddle",
    venv: PADDLE_VENV,
    requirements: PADDLE_REQUIREMENTS,
    minor: [8, 12],
    versionHint: "paddlepaddle 2.6.2 has wheels for 3.8-3.12",
    firstTime: "about 1.3 GB",
    async after(py) {
      await writeSitecustomize(py);
      const probe = await output(py, [
        "-c",
        "import cv2, paddle, paddleseg; print(paddle.__version__, paddleseg.__version__)",
      ]);
      if (!probe.ok) throw new Error(`paddle and paddleseg installed but do not import:\n${probe.text}`);
      return `paddlepaddle / paddleseg ${probe.text.trim().split("\n").pop()}`;
    },
  }, log);
}

export const paddleStep: SetupStep = {
  name: "paddle",
  purposes: ["test"],
  run: (ctx: SetupContext) => ensurePaddleEnv(ctx.root, ctx.log),
};

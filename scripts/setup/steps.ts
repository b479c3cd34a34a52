/** The ordered list of set-up steps. Each step returns true when it did work, false when cached. */
import { pythonStep } from "./python.ts";
import { nativeStep } from "./native.ts";
import { datasetStep } from "./dataset.ts";
import { browserStep } from "./browser.ts";
import { vulkanStep } from "./vulkan.ts";
import { paddleStep } from "./paddle.ts";

export interface SetupContext {
  root: string;
  purpose: "train" | "test" | "all";
  quiet: boolean;
  gpu: boolean;
  log: (msg: string) => void;
}

export interface SetupStep {
  name: string;
  /** Which of the README's commands need it. */
  purposes: Array<"train" | "test">;
  /** An optional step that fails is reported and skipped (the features that need it say so). */
  optional?: boolean;
  run: (ctx: SetupContext) => Promise<boolean>;
}

export const steps: SetupStep[] = [pythonStep, nativeStep, datasetStep, browserStep, vulkanStep, paddleStep];

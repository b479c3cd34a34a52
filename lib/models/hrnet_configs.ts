/**
 * PaddleSeg's HRNet widths (`paddleseg/models/backbones/hrnet.py`, the factories HRNet_W18_Small_V1 ...
 * HRNet_W64, same names) plus `HRNet_Tiny` for fast tests, as plain data: this module imports nothing, so
 * the config schema (lib/config) can list the backbones and derive their channel counts from the one
 * table without loading TensorFlow.js. lib/models/hrnet.ts builds the networks from it.
 */
export interface StageConfig {
  numModules: number;
  numBlocks: number[];
  numChannels: number[];
}

export interface HRNetConfig {
  /** Channels of the two stem convs (64 in every PaddleSeg width). */
  stemChannels?: number;
  stage1: StageConfig;
  stage2: StageConfig;
  stage3: StageConfig;
  stage4: StageConfig;
}

function standard(c: number): HRNetConfig {
  return {
    stage1: { numModules: 1, numBlocks: [4], numChannels: [64] },
    stage2: { numModules: 1, numBlocks: [4, 4], numChannels: [c, 2 * c] },
    stage3: { numModules: 4, numBlocks: [4, 4, 4], numChannels: [c, 2 * c, 4 * c] },
    stage4: { numModules: 3, numBlocks: [4, 4, 4, 4], numChannels: [c, 2 * c, 4 * c, 8 * c] },
  };
}

/** A tiny test width, then PaddleSeg's backbone factories (same names), in the order configs list them. */
export const HRNET_CONFIGS = {
  /** Not in PaddleSeg: a 16-channel stem, one block/module everywhere, 4/8/16/32 channels; for fast tests. */
  HRNet_Tiny: {
    stemChannels: 16,
    stage1: { numModules: 1, numBlocks: [1], numChannels: [8] },
    stage2: { numModules: 1, numBlocks: [1, 1], numChannels: [4, 8] },
    stage3: { numModules: 1, numBlocks: [1, 1, 1], numChannels: [4, 8, 16] },
    stage4: { numModules: 1, numBlocks: [1, 1, 1, 1], numChannels: [4, 8, 16, 32] },
  },
  HRNet_W18_Small_V1: {
    stage1: { numModules: 1, numBlocks: [1], numChannels: [32] },
    stage2: { numModules: 1, numBlocks: [2, 2], numChannels: [16, 32] },
    stage3: { numModules: 1, numBlocks: [2, 2, 2], numChannels: [16, 32, 64] },
    stage4: { numModules: 1, numBlocks: [2, 2, 2, 2], numChannels: [16, 32, 64, 128] },
  },
  HRNet_W18_Small_V2: {
    stage1: { numModules: 1, numBlocks: [2], numChannels: [64] },
    stage2: { numModules: 1, numBlocks: [2, 2], numChannels: [18, 36] },
    stage3: { numModules: 3, numBlocks: [2, 2, 2], numChannels: [18, 36, 72] },
    stage4: { numModules: 2, numBlocks: [2, 2, 2, 2], numChannels: [18, 36, 72, 144] },
  },
  HRNet_W18: standard(18),
  HRNet_W30: standard(30),
  HRNet_W32: standard(32),
  HRNet_W40: standard(40),
  HRNet_W44: standard(44),
  HRNet_W48: standard(48),
  HRNet_W60: standard(60),
  HRNet_W64: standard(64),
} satisfies Record<string, HRNetConfig>;

export type BackboneName = keyof typeof HRNET_CONFIGS;
export const BACKBONE_NAMES = Object.keys(HRNET_CONFIGS) as BackboneName[];

/**
 * Channels of the HRNetV2 representation: the four stage-4 branches concatenated at stride 4 (720 for
 * W48, 240 for W18-Small-V1).
 */
export function hrnetConcatChannels(config: HRNetConfig): number {
  return config.stage4.numChannels.reduce((a, b) => a + b, 0);
}

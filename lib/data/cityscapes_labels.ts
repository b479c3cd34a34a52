/**
 * The official Cityscapes label table (cityscapesScripts `helpers/labels.py`): 34 ids, 19 train ids.
 * `trainId` 255 = ignored in training and evaluation.
 */
export interface CityscapesLabel {
  name: string;
  id: number;
  trainId: number;
  color: [number, number, number];
}

export const CITYSCAPES_LABELS: readonly CityscapesLabel[] = [
  { name: "unlabeled", id: 0, trainId: 255, color: [0, 0, 0] },
  { name: "ego vehicle", id: 1, trainId: 255, color: [0, 0, 0] },
  { name: "rectification border", id: 2, trainId: 255, color: [0, 0, 0] },
  { name: "out of roi", id: 3, trainId: 255, color: [0, 0, 0] },
  { name: "static", id: 4, trainId: 255, color: [0, 0, 0] },
  { name: "dynamic", id: 5, trainId: 255, color: [111, 74, 0] },
  { name: "ground", id: 6, trainId: 255, color: [81, 0, 81] },
  { name: "road", id: 7, trainId: 0, color: [128, 64, 128] },
  { name: "sidewalk", id: 8, trainId: 1, color: [244, 35, 232] },
  { name: "parking", id: 9, trainId: 255, color: [250, 170, 160] },
  { name: "rail track", id: 10, trainId: 255, color: [230, 150, 140] },
  { name: "building", id: 11, trainId: 2, color: [70, 70, 70] },
  { name: "wall", id: 12, trainId: 3, color: [102, 102, 156] },
  { name: "fence", id: 13, trainId: 4, color: [190, 153, 153] },
  { name: "guard rail", id: 14, trainId: 255, color: [180, 165, 180] },
  { name: "bridge", id: 15, trainId: 255, color: [150, 100, 100] },
  { name: "tunnel", id: 16, trainId: 255, color: [150, 120, 90] },
  { name: "pole", id: 17, trainId: 5, color: [153, 153, 153] },
  { name: "polegroup", id: 18, trainId: 255, color: [153, 153, 153] },
  { name: "traffic light", id: 19, trainId: 6, color: [250, 170, 30] },
  { name: "traffic sign", id: 20, trainId: 7, color: [220, 220, 0] },
  { name: "vegetation", id: 21, trainId: 8, color: [107, 142, 35] },
  { name: "terrain", id: 22, trainId: 9, color: [152, 251, 152] },
  { name: "sky", id: 23, trainId: 10, color: [70, 130, 180] },
  { name: "person", id: 24, trainId: 11, color: [220, 20, 60] },
  { name: "rider", id: 25, trainId: 12, color: [255, 0, 0] },
  { name: "car", id: 26, trainId: 13, color: [0, 0, 142] },
  { name: "truck", id: 27, trainId: 14, color: [0, 0, 70] },
  { name: "bus", id: 28, trainId: 15, color: [0, 60, 100] },
  { name: "caravan", id: 29, trainId: 255, color: [0, 0, 90] },
  { name: "trailer", id: 30, trainId: 255, color: [0, 0, 110] },
  { name: "train", id: 31, trainId: 16, color: [0, 80, 100] },
  { name: "motorcycle", id: 32, trainId: 17, color: [0, 0, 230] },
  { name: "bicycle", id: 33, trainId: 18, color: [119, 11, 32] },
];

/** Names of the 19 train ids, index = trainId. */
export const CITYSCAPES_CLASS_NAMES: readonly string[] = CITYSCAPES_LABELS
  .filter((l) => l.trainId !== 255)
  .sort((a, b) => a.trainId - b.trainId)
  .map((l) => l.name);

/** Official colours of the 19 train ids, index = trainId. */
export const CITYSCAPES_PALETTE: readonly [number, number, number][] = CITYSCAPES_LABELS
  .filter((l) => l.trainId !== 255)
  .sort((a, b) => a.trainId - b.trainId)
  .map((l) => l.color);

/** Lookup table id -> trainId for ids 0..255 (unknown ids and -1 map to 255). */
export const ID_TO_TRAIN_ID: Uint8Array = (() => {
  const lut = new Uint8Array(256).fill(255);
  for (const l of CITYSCAPES_LABELS) lut[l.id] = l.trainId;
  return lut;
})();

/** Lookup table trainId -> labelId (the official evaluator's input); 255 -> 0 (unlabeled). */
export const TRAIN_ID_TO_ID: Uint8Array = (() => {
  const lut = new Uint8Array(256).fill(0);
  for (const l of CITYSCAPES_LABELS) if (l.trainId !== 255) lut[l.trainId] = l.id;
  return lut;
})();

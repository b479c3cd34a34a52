/**
 * Loader worker: receives the dataset description once, then decodes and augments samples on request.
 * Messages in: {init: SegDataset} | {id, index, rng}. Out: {id, sample} (buffers transferred) | {id, error}.
 */
import type { SegDataset } from "./dataset.ts";
import { processSample } from "./pipeline.ts";
import { buildTransforms, type Transform } from "./transforms.ts";

interface WorkerScope {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(msg: unknown, transfer?: Transferable[]): void;
}
const scope = self as unknown as WorkerScope;

let ds: SegDataset | null = null;
let transforms: Transform[] = [];

scope.onmessage = async (e: MessageEvent) => {
  const msg = e.data;
  if (msg.init) {
    ds = msg.init as SegDataset;
    transforms = buildTransforms(ds.transforms);
    return;
  }
  const { id, index, rng } = msg;
  try {
    const s = await processSample(ds!, transforms, index, rng);
    const transfer: Transferable[] = [s.image.buffer as ArrayBuffer];
    if (s.label && s.label.byteOffset === 0 && s.label.byteLength === s.label.buffer.byteLength) {
      transfer.push(s.label.buffer as ArrayBuffer);
    }
    scope.postMessage({ id, sample: s }, transfer);
  } catch (err) {
    scope.postMessage({ id, error: (err as Error).message });
  }
};

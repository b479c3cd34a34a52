/** Worker for synthetic.ts: renders and encodes one image pair per message. */
import { renderSyntheticPair } from "./synthetic.ts";

interface WorkerScope {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(msg: unknown, transfer?: Transferable[]): void;
}
const scope = self as unknown as WorkerScope;

scope.onmessage = async (e: MessageEvent) => {
  const { id, params, split, k } = e.data;
  try {
    const { image, labelIds } = await renderSyntheticPair(params, split, k);
    const a = image.slice(), b = labelIds.slice(); // own buffers, so they can be transferred
    scope.postMessage({ id, image: a, labelIds: b }, [a.buffer, b.buffer]);
  } catch (err) {
    scope.postMessage({ id, error: `${split}/${k}: ${(err as Error).message}` });
  }
};

/**
 * Load check used by the `native` set-up step (in a child process, so the set-up itself never loads
 * libtensorflow): loads the native backend, runs one tiny op, prints one JSON line with what it found.
 *
 *   deno run -A scripts/native/smoke.ts
 */
import { loadNativeBackend } from "../../lib/backend/native.ts";
import { tf } from "../../lib/backend/tf.ts";

const info = await loadNativeBackend();
const sum = tf.tidy(() => tf.add(tf.tensor1d([1, 2]), tf.tensor1d([3, 4])).dataSync());
if (sum[0] !== 4 || sum[1] !== 6) throw new Error(`native backend computed [1,2]+[3,4] = [${sum}]`);
console.log(JSON.stringify({ ...info, backend: tf.getBackend(), numTensors: tf.memory().numTensors }));

/**
 * The one place the project imports TensorFlow.js from.
 *
 * We import the umbrella `@tensorflow/tfjs` package: under Deno, importing the modular packages
 * (`tfjs-core` + `tfjs-backend-cpu` ...) separately loses the gradient registrations. Backends are
 * chosen and initialised by `lib/backend/mod.ts`; every other module imports `tf` from here.
 */
import * as tf from "@tensorflow/tfjs";

export { tf };
export type Tensor = tf.Tensor;
export type Tensor1D = tf.Tensor1D;
export type Tensor2D = tf.Tensor2D;
export type Tensor3D = tf.Tensor3D;
export type Tensor4D = tf.Tensor4D;
export type Variable = tf.Variable;

/**
 * Whether updating many small tensors as one concatenated tensor pays on the active backend. On the native
 * backend every op is a binding call (~15 µs), so concat + 6 ops + split beat 6 ops per tensor (optimizer and
 * BN statistics: W18-Small-V2 step 5443 -> 2374 calls); on wasm the copies of concat/split cost more than the
 * calls they save (a 64x32 W18-Small-V2 step went from 0.47 to 0.80 s), so other backends update per tensor.
 */
export function flatUpdatesPay(): boolean {
  return tf.getBackend() === "tensorflow";
}

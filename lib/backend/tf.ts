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

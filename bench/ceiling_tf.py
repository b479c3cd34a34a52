"""TensorFlow side of `deno task bench ceiling`: the branch stack of bench/ceiling_torch.py (same layers, NHWC)
as a Keras model trained by a `tf.function` step, i.e. one TensorFlow graph per step, optimised by grappler
(oneDNN conv/BN/ReLU fusions and layout), in fp32 and in two bf16 forms: grappler's oneDNN bf16 auto mixed
precision (`auto_mixed_precision_onednn_bfloat16`) and Keras' `mixed_bfloat16` policy. This is the route the
native backend could take with a graph of its own: its ceiling, measured with the same libtensorflow release.

  argv[1]: JSON as for bench/ceiling_torch.py
  stdout (last line): JSON {"versions": {...}, "seconds": {"tensorflow graph fp32": [...], ...}}
"""
import json, os, sys, time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

job = json.loads(sys.argv[1])
tf.config.threading.set_intra_op_parallelism_threads(int(job["threads"]))
N, H, W, WIDTH, BLOCKS = job["n"], job["h"], job["w"], job["width"], job["blocks"]
L = tf.keras.layers


def build():
    def cbr(x, c, k=3, s=1, relu=True):
        x = L.Conv2D(c, k, s, padding="same", use_bias=False)(x)
        x = L.BatchNormalization(momentum=0.9, epsilon=1e-5)(x)
        return L.ReLU()(x) if relu else x

    inp = tf.keras.Input((H, W, 3), batch_size=N)
    x = cbr(cbr(cbr(inp, 64, s=2), 64, s=2), WIDTH, k=1)
    cs, outs = [WIDTH * 2**i for i in range(4)], []
    for i, c in enumerate(cs):
        for _ in range(BLOCKS):
            x = L.ReLU()(L.Add()([x, cbr(cbr(x, c), c, relu=False)]))
        outs.append(x)
        if i < 3:
            x = cbr(x, cs[i + 1], s=2)
    cat = L.Concatenate()([outs[0]] + [L.Resizing(H // 4, W // 4)(o) for o in outs[1:]])
    return tf.keras.Model(inp, L.Resizing(H, W)(L.Conv2D(19, 1)(cat)))


seconds = {}
for mode in ["fp32", "bf16 (grappler AMP)", "bf16 (Keras mixed_bfloat16)"]:
    tf.keras.backend.clear_session()
    tf.config.optimizer.set_experimental_options({"auto_mixed_precision_onednn_bfloat16": "grappler" in mode})
    tf.keras.mixed_precision.set_global_policy("mixed_bfloat16" if "Keras" in mode else "float32")
    tf.random.set_seed(0)
    net, opt = build(), tf.keras.optimizers.SGD(0.01, momentum=0.9)
    x = tf.random.normal((N, H, W, 3))
    y = tf.random.uniform((N, H, W), 0, 19, tf.int32)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            logits = tf.cast(net(x, training=True), tf.float32)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        grads = tape.gradient(loss, net.trainable_variables)
        opt.apply_gradients(zip(grads, net.trainable_variables))
        return loss

    ts = []
    for _ in range(int(job["steps"])):
        t0 = time.perf_counter()
        step().numpy()
        ts.append(time.perf_counter() - t0)
    seconds[f"tensorflow graph {mode}"] = ts
print(json.dumps({"versions": {"tensorflow": tf.__version__, "keras": tf.keras.__version__}, "seconds": seconds}))

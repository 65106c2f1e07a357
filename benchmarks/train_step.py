"""Where a training step's time goes: CPU time per step of the default model, by part.

    env/run-in-env python benchmarks/train_step.py [JSON overrides of ModelConfig]

Times 20 steps (after a warm-up) on the ASOS train purchases of: the forward pass (loss), the
forward and backward passes (gradients), and full steps with each optimizer. CPU time
(`time.process_time`, all threads) is reported beside wall time: on a shared machine it is the
steadier figure.
"""

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import json
import sys
import time

import numpy as np
import tensorflow as tf

from benchmarks.tune import index_pairs
from models import model as model_lib
from pipeline import configs

STEPS = 20


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    overrides = json.loads(argv[0]) if argv else {}
    users, items, num_users, num_items = index_pairs(configs.default_data_dir())
    history = model_lib.build_user_history(users, items, num_users, num_items)
    config = model_lib.DEFAULT.replace(**overrides)
    model = model_lib.Recommender(num_users, num_items, config, user_history=history)
    sample = model_lib._sampler(config, num_items, np.bincount(items, minlength=num_items))
    variables = model.trainable_variables
    seed = tf.constant([config.seed, 0], tf.int64)
    batch_users = tf.constant(users[:config.batch_size])
    batch_items = tf.constant(items[:config.batch_size])

    @tf.function
    def forward(u, i):
        return model.loss(u, i, sample(i, seed))

    @tf.function
    def gradients(u, i):
        with tf.GradientTape() as tape:
            loss = model.loss(u, i, sample(i, seed))
        return loss, tape.gradient(loss, variables)

    def full_step(optimizer):
        @tf.function
        def step(u, i):
            with tf.GradientTape() as tape:
                loss = model.loss(u, i, sample(i, seed))
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            return loss
        return step

    parts = [("forward", forward), ("forward + backward", gradients)]
    for name in ("lazy_adam", "adam", "adagrad"):
        parts.append((f"step, {name}", full_step(
            model_lib._make_optimizer(config.replace(optimizer=name), variables))))
    print(f"[train_step] {json.dumps(overrides)}: batch {config.batch_size}, "
          f"dim {config.embedding_dim}, sampling {config.sampling}")
    for name, fn in parts:
        fn(batch_users, batch_items)
        cpu, wall = time.process_time(), time.time()
        for _ in range(STEPS):
            out = fn(batch_users, batch_items)
        np.asarray(out[0] if isinstance(out, tuple) else out)
        print(f"{name:22s} cpu {(time.process_time() - cpu) / STEPS * 1000:6.1f} ms/step   "
              f"wall {(time.time() - wall) / STEPS * 1000:6.1f} ms/step", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

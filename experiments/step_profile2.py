"""CPU time (process_time, all threads) per train step of the default model, by part."""
import sys, os; sys.path.insert(0, "/work/wt-model"); sys.path.insert(0, os.path.dirname(__file__))
os.environ["TF_USE_LEGACY_KERAS"]="1"
import time, json, numpy as np, tensorflow as tf
from data import load
from components import model as M
import fast
d = load(); U, N = d["num_users"], d["num_items"]
u, i = (a.astype(np.int32) for a in d["train"])
H = M.build_user_history(u, i, U, N)
cfg = M.DEFAULT.replace(**json.loads(sys.argv[1] if len(sys.argv) > 1 else "{}"))
bs = cfg.batch_size
counts = np.bincount(i, minlength=N)
for cls in (M.Recommender, fast.Fast):
    rec = cls(U, N, cfg, user_history=H)
    sample = M._sampler(cfg, N, counts)
    var = rec.trainable_variables
    opts = {"adam": M._make_optimizer(cfg), "lazyadam": fast.LazyAdam(var, cfg.learning_rate),
            "adagrad": M.keras.optimizers.Adagrad(0.1, initial_accumulator_value=1e-6)}
    seed = tf.constant([42, 0], tf.int64)
    @tf.function
    def fwd(users, items): return rec.loss(users, items, sample(items, seed))
    @tf.function
    def grad(users, items):
        with tf.GradientTape() as t: l = rec.loss(users, items, sample(items, seed))
        return l, t.gradient(l, var)
    def stepper(opt):
        @tf.function
        def f(users, items):
            with tf.GradientTape() as t: l = rec.loss(users, items, sample(items, seed))
            opt.apply_gradients(zip(t.gradient(l, var), var)); return l
        return f
    fns = [("forward", fwd), ("fwd+grad", grad)] + [(f"step {k}", stepper(o)) for k, o in opts.items()]
    ub, ib = tf.constant(u[:bs]), tf.constant(i[:bs])
    for name, f in fns:
        f(ub, ib); f(ub, ib)
        c, w = time.process_time(), time.time()
        for _ in range(20): r = f(ub, ib)
        _ = np.asarray(r[0] if isinstance(r, tuple) else r)
        print(f"{cls.__name__:12s} {json.dumps(cfg.to_dict()['embedding_dim'])}d bs={bs} {name:16s} cpu {(time.process_time()-c)/20*1000:6.1f} ms  wall {(time.time()-w)/20*1000:6.1f} ms", flush=True)

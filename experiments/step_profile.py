"""Where does a train step's time go? Times N steps of variants of the default model."""
import sys, os; sys.path.insert(0, "/work/wt-model"); sys.path.insert(0, os.path.dirname(__file__))
os.environ["TF_USE_LEGACY_KERAS"]="1"
import time, numpy as np, tensorflow as tf
from data import load
from components import model as M, sampling
d = load(); U, N = d["num_users"], d["num_items"]
u, i = (a.astype(np.int32) for a in d["train"])
H = M.build_user_history(u, i, U, N)
cfg = M.DEFAULT
variant = sys.argv[1] if len(sys.argv) > 1 else "base"
bs = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
cfg = cfg.replace(batch_size=bs)
if variant == "nol2": cfg = cfg.replace(l2=0.0)
rec = M.Recommender(U, N, cfg, user_history=H)
counts = np.bincount(i, minlength=N)
sample = M._sampler(cfg, N, counts)
opt = M._make_optimizer(cfg)
if variant == "sgd": opt = M.keras.optimizers.SGD(0.1)
if variant == "adagrad": opt = M.keras.optimizers.Adagrad(0.1)
var = rec.trainable_variables
step = tf.Variable(0, dtype=tf.int64)
jit = variant == "jit"
@tf.function(jit_compile=jit)
def fwd(users, items):
    seed = tf.stack([tf.constant(42, tf.int64), step])
    return rec.loss(users, items, sample(items, seed))
@tf.function(jit_compile=jit)
def grad(users, items):
    seed = tf.stack([tf.constant(42, tf.int64), step])
    with tf.GradientTape() as t:
        l = rec.loss(users, items, sample(items, seed))
    g = t.gradient(l, var)
    return l, g
@tf.function(jit_compile=jit)
def train_step(users, items):
    seed = tf.stack([tf.constant(42, tf.int64), step])
    with tf.GradientTape() as t:
        l = rec.loss(users, items, sample(items, seed))
    opt.apply_gradients(zip(t.gradient(l, var), var))
    step.assign_add(1)
    return l
ub, ib = tf.constant(u[:bs]), tf.constant(i[:bs])
for name, f in (("forward", fwd), ("fwd+grad", grad), ("full step", train_step)):
    f(ub, ib)
    t = time.time()
    for _ in range(30): r = f(ub, ib)
    float(r if name != "fwd+grad" else r[0])
    print(f"{variant} bs={bs} {name}: {(time.time()-t)/30*1000:.1f} ms", flush=True)
# tf.data iteration cost
ds = tf.data.Dataset.from_tensor_slices((u, i)).shuffle(len(u), seed=42).batch(bs).prefetch(tf.data.AUTOTUNE)
t = time.time(); n = 0
for a, b in ds: n += 1
print(f"tf.data epoch: {n} batches {(time.time()-t)*1000:.0f} ms")

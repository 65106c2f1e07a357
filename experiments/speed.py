import sys, os; sys.path.insert(0, "/work/wt-model"); sys.path.insert(0, os.path.dirname(__file__))
os.environ["TF_USE_LEGACY_KERAS"]="1"
import time, json, numpy as np, tensorflow as tf
from data import load
from components import model as M
import fast
d = load(); U, N = d["num_users"], d["num_items"]
u, i = (a.astype(np.int32) for a in d["train"])
H = M.build_user_history(u, i, U, N)
cfg = M.DEFAULT.replace(**json.loads(sys.argv[1]))
opt = sys.argv[2] if len(sys.argv) > 2 else "default"
jit = "jit" in sys.argv[3:] if len(sys.argv) > 3 else False
rec = fast.Fast(U, N, cfg, user_history=H)
o = None
if opt == "lazy": o = fast.LazyAdam(rec.trainable_variables, cfg.learning_rate)
if opt == "adagrad": o = M.keras.optimizers.Adagrad(cfg.learning_rate, initial_accumulator_value=1e-6)
t = time.time(); fast.train(rec, u, i, optimizer=o, jit=jit); print(f"{sys.argv[1:]} total {time.time()-t:.1f}s")

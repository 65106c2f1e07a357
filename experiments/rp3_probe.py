import sys, os; sys.path.insert(0, "/work/wt-model"); sys.path.insert(0, os.path.dirname(__file__))
os.environ["TF_USE_LEGACY_KERAS"]="1"
import time, numpy as np
from data import load, carve_validation, interactions, rp3beta
from tests.reference_protocol import evaluate_ranking, popularity_score_fn
d = load(); U, N = d["num_users"], d["num_items"]
u, i = d["train"]
fit, val = carve_validation(u, i, 0)
print("val purchases", val.sum(), "fit", fit.sum())
X = interactions(u[fit], i[fit], U, N)
def show(name, m): print(f"{name:30s} HR {m['hit_rate@10']:.4f} NDCG {m['ndcg@10']:.4f} R100 {m['recall@100']:.4f} MRR {m['mrr']:.4f} SA {m['sampled_accuracy']:.4f} ({m['seconds']:.0f}s)", flush=True)
pairs_fit = (u[fit], i[fit]); pairs_val = (u[val], i[val])
show("popularity", evaluate_ranking(popularity_score_fn(i[fit], N), pairs_fit, pairs_val, N, 29696))
pop = np.bincount(i[fit], minlength=N).astype(np.float32)
for a in (0.0, 0.25, 0.5, 0.75):
  for b in (0.0, 0.25):
    t = time.time(); W = rp3beta(X, a, b); ft = time.time() - t
    fn = lambda us: (X[us] @ W).toarray() + 1e-6 * pop / pop.max()
    show(f"rp3 a={a} b={b} nnz={W.nnz} fit {ft:.1f}s", evaluate_ranking(fn, pairs_fit, pairs_val, N, 29696))

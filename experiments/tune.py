"""Validation search: learned model, RP3beta and their blend, on a split carved from train."""
import sys, os; sys.path.insert(0, "/work/wt-model"); sys.path.insert(0, os.path.dirname(__file__))
os.environ["TF_USE_LEGACY_KERAS"]="1"
import argparse, json, time
import numpy as np, tensorflow as tf
from data import load, carve_validation, interactions, rp3beta
from components import model as M
import fast

K = 10

def val_ranks(score_batches, fit_X, val_u, val_i, batch=1024):
    """ranks[name] = 0-based rank of each val item (one per user) with fit purchases masked."""
    out = {}
    for s in range(0, len(val_u), batch):
        us, it = val_u[s:s+batch], val_i[s:s+batch]
        rows, cols = fit_X[us].nonzero()
        for name, scores in score_batches(us):
            scores = np.array(scores, np.float32); scores[rows, cols] = -np.inf
            true = scores[np.arange(len(us)), it]
            out.setdefault(name, []).append((scores > true[:, None]).sum(1))
    return {k: np.concatenate(v) for k, v in out.items()}

def summary(r):
    n = len(r)
    hr = (r < K).mean(); nd = np.where(r < K, 1/np.log2(r + 2), 0).mean(); r100 = (r < 100).mean()
    return hr, nd, r100, (1/(r+1)).mean(), np.std(r < K)/np.sqrt(n), np.std(np.where(r < K, 1/np.log2(r + 2), 0))/np.sqrt(n)

def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", action="append", default=[], help="json overrides of ModelConfig; repeatable")
    p.add_argument("--weights", default="3,6")
    p.add_argument("--alpha", type=float, default=0.25)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    d = load(); U, N = d["num_users"], d["num_items"]
    u, i = d["train"]
    fit, val = carve_validation(u, i, a.seed)
    X = interactions(u[fit], i[fit], U, N)
    W = rp3beta(X, a.alpha, 0.0); W0 = rp3beta(X, 0.0, 0.0)
    pop = np.bincount(i[fit], minlength=N).astype(np.float32)
    vu, vi = u[val], i[val]
    weights = [float(w) for w in a.weights.split(",")]
    models = {}
    for spec in a.model:
        cfg = M.DEFAULT.replace(**json.loads(spec))
        H = M.build_user_history(u[fit], i[fit], U, N)
        rec = fast.Fast(U, N, cfg, user_history=H if cfg.use_history else None)
        t = time.time(); fast.train(rec, u[fit].astype(np.int32), i[fit].astype(np.int32),
                                    optimizer=fast.LazyAdam(rec.trainable_variables, cfg.learning_rate), verbose=False)
        print(f"trained {spec} in {time.time()-t:.0f}s", flush=True)
        models[spec] = rec
    def batches(us):
        g = (X[us] @ W).toarray(); 
        yield "rp3", g + 1e-6 * pop / pop.max()
        yield "pop", np.broadcast_to(pop, g.shape)
        for spec, rec in models.items():
            dot = rec.score_all(us.astype(np.int32)).numpy()
            n = np.asarray(X[us].sum(1)).ravel()[:, None]
            yield f"{spec} alone", dot
            for w in weights:
                yield f"{spec} + {w}*rp3", dot + w * g
    t = time.time()
    ranks = val_ranks(batches, X, vu, vi)
    print(f"val: {len(vu)} users, evaluated in {time.time()-t:.0f}s")
    print(f"{'model':60s} HR@10   NDCG@10 R@100   MRR    (se HR, NDCG)")
    for name, r in ranks.items():
        hr, nd, r100, mrr, se1, se2 = summary(r)
        print(f"{name:60s} {hr:.4f}  {nd:.4f}  {r100:.4f}  {mrr:.4f} ({se1:.4f}, {se2:.4f})", flush=True)

main()

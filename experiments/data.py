"""Research helpers: the ASOS parquet files as index pairs, the validation carve, RP3beta."""
import os
import numpy as np
import pyarrow.parquet as pq
import scipy.sparse as sp

DATA = os.environ.get("ASOS_DIR", "/work/shared/data/asos")
TRAIN = "dsf_asos_train_with_alphanumeric_dummy_ids.parquet"
EVAL = "dsf_asos_valid_with_alphanumeric_dummy_ids.parquet"


def vocab(values):
    uniq, counts = np.unique(values, return_counts=True)
    order = np.lexsort((uniq, -counts))  # descending frequency
    return uniq[order]


def load():
    tr = pq.read_table(os.path.join(DATA, TRAIN)).to_pydict()
    ev = pq.read_table(os.path.join(DATA, EVAL)).to_pydict()
    tu = np.array(tr["dummyUserId"], dtype=object).astype("S20")
    ti = np.array(tr["productId"], dtype=np.int64)
    eu = np.array(ev["dummyUserId"], dtype=object).astype("S20")
    ei = np.array(ev["productId"], dtype=np.int64)
    uv, iv = vocab(tu), vocab(ti)
    umap = {u: k for k, u in enumerate(uv)}
    imap = {i: k for k, i in enumerate(iv)}
    enc = lambda m, xs, oov: np.array([m.get(x, oov) for x in xs], dtype=np.int64)
    return dict(num_users=len(uv), num_items=len(iv), item_ids=iv,
                train=(enc(umap, tu, len(uv)), enc(imap, ti, len(iv))),
                eval=(enc(umap, eu, len(uv)), enc(imap, ei, len(iv))))


def carve_validation(users, items, seed=0):
    """One purchase per user with >= 2 train purchases, at random: (fit_mask, val_mask)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(users))
    counts = np.bincount(users)
    first = np.zeros(len(users), bool)
    seen = np.zeros(len(counts), bool)
    # the first row of each user in a random order is held out (if the user has >= 2)
    _, pos = np.unique(users[order], return_index=True)
    chosen = order[pos]
    chosen = chosen[counts[users[chosen]] >= 2]
    val = np.zeros(len(users), bool)
    val[chosen] = True
    return ~val, val


def interactions(users, items, num_users, num_items):
    keep = (users < num_users) & (items < num_items)
    X = sp.csr_matrix((np.ones(keep.sum(), np.float32), (users[keep], items[keep])),
                      shape=(num_users, num_items))
    X.data[:] = 1.0
    return X


def rp3beta(X, alpha=0.25, beta=0.0, topk=None):
    """Item-item W[i, j] = deg_i^-a sum_u X_ui X_uj deg_u^-a / deg_j^b, diagonal zero."""
    du = np.asarray(X.sum(1)).ravel(); di = np.asarray(X.sum(0)).ravel()
    Pui = sp.diags(np.power(np.maximum(du, 1), -alpha)) @ X
    Piu = sp.diags(np.power(np.maximum(di, 1), -alpha)) @ X.T.tocsr()
    W = (Piu @ Pui).tocsr()
    if beta:
        W = W @ sp.diags(np.power(np.maximum(di, 1), -beta))
    W.setdiag(0); W.eliminate_zeros()
    return W.tocsr().astype(np.float32)

"""Feature names and the model-side defaults: the one place for them.

The raw columns are the ASOS parquet files'; Transform turns them into vocabulary indices; the
serving SavedModel takes raw ids and returns raw ids."""

# --- Raw features (the parquet columns) -----------------------------------------------------
USER_KEY = "dummyUserId"  # bytes, 20 ASCII letters or digits
PRODUCT_KEY = "productId"  # int64 in tf.Example (int32 in parquet)
LABEL_KEY = PRODUCT_KEY  # the purchased product is what the model must rank first

# --- Transform outputs ------------------------------------------------------------------------
USER_INDEX = "user_index"
PRODUCT_INDEX = "product_index"
USER_VOCAB = "user_vocab"  # file names under transform_fn/assets, loaded by the serving model
PRODUCT_VOCAB = "product_vocab"
# Ids never seen in training hash into one extra row each (index == vocabulary size). That row
# is never a candidate: the serving model answers unknown ids explicitly (see exporter.py).
NUM_OOV_BUCKETS = 1

# --- Serving ----------------------------------------------------------------------------------
SERVING_TOP_K = 100  # products returned by the serving signatures (the workshop's 100)
# Where fewer products than SERVING_TOP_K are left to recommend (a user who bought all but a few
# of the catalog; a catalog of SERVING_TOP_K products asked for one of them), the list ends in
# this product id, with the lowest float32 as its score: never a product bought, never -inf (not
# JSON). Batch recommendations leave these rows out.
PADDING_PRODUCT = -1
SAMPLED_NEGATIVES = 100  # the notebook's sampled accuracy: the true product against 100 drawn ones

# --- Evaluation -------------------------------------------------------------------------------
# The Evaluator's metrics (components/evaluator.py computes them with models/eval_metrics.py's
# RankingMetric, per eval purchase): name -> (kind, k). Declared here, without TensorFlow, so that
# the runners' --gate-bound help names them before anything heavy loads. The recall@k curve
# beside them runs k = 1..SERVING_TOP_K (the run report's axis too).
EVAL_METRICS = {
    "recall_at_10": ("recall", 10),
    "recall_at_100": ("recall", 100),
    "ndcg_at_10": ("ndcg", 10),
    "mrr": ("mrr", 0),
    "sampled_accuracy": ("sampled_accuracy", 0),
}

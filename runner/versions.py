"""The pushed versions: their history, and a rollback to one of them (`make history`,
`make rollback`; the entry point is versions.py).

History reads every version's model card (components/model_card.py) and lists the versions
newest first: when and why each was pushed, its data, its gated metrics and the gate's verdict,
or what it is a rollback of; `*` marks the one served (the newest complete version, DECISIONS
D1); a version that is not complete says why and that it is never served.

A rollback publishes a copy of an earlier complete version as a NEW version number (D2), with
the same code the Pusher uses (components/model_versions.py: temporary name and rename, or an
ordered copy on gs://), its card saying `rollback_of` and the reason. Why a copy and not a
pinned version in a serving config: a running server (TF Serving's default policy, `make
serve`) picks up the new number at its next poll with no restart and no config file, the next
pipeline run takes the served model as its baseline without knowing about rollbacks, and a later
push is served as usual; a pin would need `--model_config_file` with polling on every server
and would hold back every later push until someone removes it. The cost is a copy of the model
on disk.
"""

from __future__ import annotations

import datetime
import os
from typing import Any, Dict, List, Optional

from components import model_card, model_versions, pusher, spans as span_layout

METRIC_LABELS = {"recall_at_10": "recall@10", "recall_at_100": "recall@100", "ndcg_at_10": "ndcg@10",
                 "mrr": "mrr", "sampled_accuracy": "sampled acc"}
DEFAULT_METRICS = ["recall_at_10", "ndcg_at_10", "sampled_accuracy"]


class VersionError(ValueError):
    """A version that cannot be rolled back to (unknown, or not complete); one line."""


class AlreadyServed(Exception):
    """The version asked for is the one served: nothing to do."""


def _when(version: model_versions.Version, card: Optional[Dict[str, Any]]) -> str:
    pushed = ((card or {}).get("model_details", {}).get("version", {}) or {}).get("pushed_at")
    if pushed:
        return pushed.replace("T", " ")[:16]
    if version.number >= 10**9:  # TFX's versions are Unix seconds
        moment = datetime.datetime.fromtimestamp(version.number, datetime.timezone.utc)
        return f"{moment:%Y-%m-%d %H:%M}"
    return "-"


def _data(card: Optional[Dict[str, Any]]) -> str:
    if not card:
        return "-"
    parts = []
    spans = model_card.spans_text(card)
    if spans:
        parts.append(spans)
    # found by exploratory testing: versions evaluated on different spans' eval files read as a
    # regression from one to the next; the eval's source says they are not comparable
    source = model_card.eval_source(card)
    where = {None: "", span_layout.STANDING: " (standing)"}.get(source, f" ({source})")
    parts += [f"{split} {n:,}{where if split == 'eval' else ''}" for split, n in model_card.rows(card).items()]
    return ", ".join(parts) or "-"


def _verdict(card: Optional[Dict[str, Any]], version: model_versions.Version, loaded_first: bool = False) -> str:
    """`loaded_first`: the newest version with a saved_model.pb, which servers (TF Serving's rule,
    and serving/model_manager.py's) try to load, whether it is complete or not."""
    if not version.complete and loaded_first:  # found by exploratory testing: `*` said another was served
        return (f"INCOMPLETE ({version.problem}): servers try to load it (the newest with a "
                f"{model_versions.SAVED_MODEL}) and fail: a server started now serves nothing, a running one "
                "keeps the version it serves; restore it or delete it by hand")
    if not version.complete:
        return f"INCOMPLETE ({version.problem}): never served; delete it by hand"
    if not card:
        return "no model card (pushed before cards, or by hand)"
    details = card.get("model_details", {}).get("version", {})
    if details.get("rollback_of") is not None:
        return f"rollback to {details['rollback_of']}: {details.get('reason', '')}"
    gate = card.get("quantitative_analysis", {}).get("gate")
    if not gate:
        return details.get("diff", "pushed")
    verdict = "blessed" if gate.get("blessed") else "NOT blessed"
    served_before = details.get("served_before")
    if gate.get("compared_with_served"):
        return f"{verdict}, compared with {served_before or 'the served model'}"
    why = f"no baseline; {served_before} was served" if served_before else "nothing served before"
    return f"{verdict} on absolute bounds ({why})"


def rows(base: str) -> List[Dict[str, Any]]:
    """One dict per numbered version under `base`, newest first: version, served, when, data,
    metrics {name: value}, verdict, complete."""
    found = model_versions.versions(base)
    served = next((v.number for v in found if v.complete), None)
    loaded_first = next((v.number for v in found if v.problem != f"no {model_versions.SAVED_MODEL}"), None)
    listed = []
    for version in found:
        card = model_card.read(version.path) if version.complete else None
        metrics = {}
        if card:
            for name in model_card.gated_metrics(card) or DEFAULT_METRICS:
                metrics[name] = model_card.metric(card, name)
        listed.append({"version": version.number, "served": version.number == served,
                       "when": _when(version, card), "data": _data(card), "metrics": metrics,
                       "verdict": _verdict(card, version, version.number == loaded_first),
                       "complete": version.complete, "path": version.path})
    return listed


def history_text(base: str, name: str = "") -> str:
    """The history as the console shows it (module docstring)."""
    listed = rows(base)
    if not listed:
        return f"no versions under {base} yet (run 'make run' to push one)"
    metrics = list(dict.fromkeys(m for row in listed for m in row["metrics"])) or DEFAULT_METRICS
    labels = [METRIC_LABELS.get(m, m) for m in metrics]
    data_width = max(len("data"), *(len(r["data"]) for r in listed))
    header = (f"  {'version':<12}{'pushed (UTC)':<18}{'data':<{data_width + 2}}"
              + "".join(f"{label:>{max(len(label), 6) + 2}}" for label in labels) + "  verdict")
    lines = [f"versions{' of ' + name if name else ''} under {base}, newest first (* = served):", header]
    widths = [max(len(label), 6) + 2 for label in labels]
    for r in listed:
        values = "".join(f"{'-' if r['metrics'].get(m) is None else format(r['metrics'][m], '.4f'):>{width}}"
                         for m, width in zip(metrics, widths))
        lines.append(f"{'*' if r['served'] else ' '} {r['version']:<12}{r['when']:<18}{r['data']:<{data_width + 2}}"
                     f"{values}  {r['verdict']}")
    for path in model_versions.temporary_copies(base):
        lines.append(f"  {os.path.basename(path)}: a temporary copy (a push under way, or killed: removed by "
                     "the next push after an hour)")
    if not any(r["served"] for r in listed):
        lines.append("no complete version: nothing is served")
    return "\n".join(lines)


def check_reason(reason: str) -> None:
    """VersionError unless a rollback's reason says something."""
    if not reason.strip():
        raise VersionError("a rollback needs a reason (REASON=\"...\" or --reason): it goes into the "
                           "version's model card and the history")


def accepted_drift_note(base: str, acceptances_dir: Optional[str] = None) -> Optional[str]:
    """When the served version (the one a rollback takes out of service) trained on a span whose
    drift was accepted: what that acceptance still does and how to withdraw it; else None. Found by
    exploratory testing: after a rollback for "drift accepted by mistake", the next run accepted
    the span again from the stored acceptance, trained the withdrawn model again and was refused,
    and nothing said why or how to undo the acceptance."""
    served = model_versions.served(base)
    card = model_card.read(served.path) if served else None
    gate = ((card or {}).get("quantitative_analysis") or {}).get("drift_gate") or {}
    if not gate.get("accepted"):
        return None
    from components import drift

    newest, previous = gate.get("newest") or "its newest span", gate.get("previous") or "the span before it"
    prefix = drift.acceptance_prefix(newest, previous)  # the DriftGate's own naming (acceptance_path)
    files = []
    if acceptances_dir and os.path.isdir(acceptances_dir):
        files = sorted(os.path.join(acceptances_dir, f) for f in os.listdir(acceptances_dir)
                       if f.startswith(prefix) and f.endswith(".json"))
    # Without the directory (--serving-dir: a compiled pipeline's versions), both places, each as its
    # runner names it (found by exploratory testing: "<pipeline root>/drift_acceptances" alone, where a
    # compiled pipeline keeps them one folder down, under its pipeline name)
    where = (", ".join(files) if files else
             f"the file named {prefix}*.json in the drift acceptances directory (a compiled pipeline's: "
             "<compiled pipeline root>/drift_acceptances/<pipeline name>/; a local run's: <output "
             "dir>/pipeline_root/<pipeline name>/drift_acceptances/; the pipeline name is asos-recommender "
             "unless --pipeline-name set another)")
    return (f"note: version {served.number}, taken out of service, trained on {newest} with its drift "
            f"accepted ({gate['accepted']}). The acceptance stands: later runs on the same spans train on "
            f"{newest} again and stop with exit 3 (a withdrawn model is not pushed again). For them to stop "
            f"at {newest}'s drift instead, delete its acceptance: {where}")


def rollback(base: str, number: int, reason: str, name: str = "",
             now: Optional[datetime.datetime] = None) -> model_versions.Version:
    """Publishes version `number` again as a new version (module docstring); returns it.
    Raises VersionError for an unknown or incomplete version, AlreadyServed for the served one."""
    check_reason(reason)
    found = model_versions.versions(base)
    target = next((v for v in found if v.number == number), None)
    if target is None:
        known = ", ".join(str(v.number) for v in found if v.complete) or "none"
        raise VersionError(f"no version {number} under {base} (complete versions: {known})")
    if not target.complete:
        raise VersionError(f"version {number} under {base} is not complete ({target.problem}): it cannot be served")
    served = next(v for v in found if v.complete)
    if served.number == number:
        raise AlreadyServed(f"version {number} is already the one served: nothing to roll back")
    if model_card.rollback_of(model_card.read(served.path)) == number:
        raise AlreadyServed(f"version {number} is already served, as version {served.number} (a rollback to it): "
                            "nothing to roll back")
    if pusher.same_model(target.path, served.path):  # the Pusher's test: it pushed the same model again
        raise AlreadyServed(f"version {number} is the same model as the served version {served.number}: "
                            "nothing to roll back")
    now = now or datetime.datetime.now(datetime.timezone.utc)
    card = model_card.read(target.path)

    def card_files(new_number: int, path: str) -> Dict[str, bytes]:
        return model_card.files(model_card.rollback(
            card, name=name or (card or {}).get("model_details", {}).get("name", ""), version=new_number,
            of=number, reason=reason.strip(), pushed_at=now, destination=path, served_before=served.number))

    return model_versions.publish(target.path, base, card_files, now=now.timestamp())

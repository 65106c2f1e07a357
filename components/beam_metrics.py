"""Reading a finished Beam pipeline's metrics: what the components' DoFns counted in the workers."""

from __future__ import annotations

from typing import List

import apache_beam as beam


def values(result, namespace: str, name: str, kind: str = "counters") -> List:
    """The committed (else attempted) values of metric `name` in `namespace`, one per step that
    reported it; `kind`: "counters" or "distributions"."""
    found = result.metrics().query(beam.metrics.MetricsFilter().with_namespace(namespace)
                                   .with_name(name))[kind]
    return [m.committed if m.committed is not None else m.attempted for m in found]


def counter(result, namespace: str, name: str) -> int:
    """Counter `name` in `namespace`, summed over the steps that reported it."""
    return int(sum(values(result, namespace, name)))

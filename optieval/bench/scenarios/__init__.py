"""Load scenarios: latency under concurrency and arrival rates, and the highest rate that meets a
p99 budget (issue 11; MLPerf LoadGen's scenarios, perf_analyzer's sweeps, trtexec's streams and
idle time).

Scenarios (``ScenarioSpec.kind``):

* ``single-stream``: one request at a time, back to back (the bench default); with ``idle_ms``
  a pause after each request, so latency after idleness is measured too.
* ``offline``: ``streams`` backend instances (ONNX Runtime sessions), each driven by its own
  thread back to back; the answer is items per second with its interval.
* ``concurrency``: a closed loop keeping ``concurrency`` requests in flight; per-request latency
  percentiles and throughput at each level.
* ``server``: an open loop. Arrivals are a seeded Poisson process at ``qps``; each query's latency
  counts from its *scheduled* arrival, so queueing (and any lateness of the generator) is
  included.

The load generator issues on a precise schedule (``perf_counter_ns``: sleep until shortly before
the due time, then spin), records how late each query was issued (``issue lag``), and marks the
run **invalid** when it could not keep the schedule: its p99 issue lag exceeded the limit, or
planned queries were never issued. Backend calls run in worker threads, which is only a parallel
load when the call releases the GIL (ONNX Runtime, TensorRT and torch do); a backend that
declares ``releases_gil = False`` is refused for the parallel scenarios.

Throughput of the parallel scenarios is completions per second of wall time. Its interval: the
measured window is cut into equal time slices, and the mean of the per-slice rates gets the
batch-means interval of :func:`optieval.stats.mean_ci_batch_means`. Percentiles and
their intervals come from :func:`optieval.stats.summarize`.

The max-QPS search (:func:`find_max_qps`) runs the server scenario at a sequence of rates
(doubling or halving from a start, then geometric bisection) and returns the highest rate whose
p99 interval lies wholly under the budget (:func:`optieval.stats.judge_max` PASS), with
every rate tried. A rate whose run was invalid, or whose interval straddles the budget, does not
pass. A run that has already proven a FAIL (enough queries over the budget that the p99 interval's
lower bound must end above it) stops early instead of draining a growing backlog.

Modules: ``spec`` (what to run), ``generators`` (the clock, instances and loops), ``server`` (the
server cell and its issue lag), ``search`` (the max-QPS search), ``results`` (what a cell
produced) and ``run`` (the entry points). These names are the package's public surface.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optieval.core import lazy_exports

if TYPE_CHECKING:
    from optieval.bench.scenarios.generators import sleep_until as sleep_until
    from optieval.bench.scenarios.results import IssueLag as IssueLag
    from optieval.bench.scenarios.results import MaxQpsResult as MaxQpsResult
    from optieval.bench.scenarios.results import RateTrial as RateTrial
    from optieval.bench.scenarios.results import ScenarioResult as ScenarioResult
    from optieval.bench.scenarios.results import max_qps_from_cell as max_qps_from_cell
    from optieval.bench.scenarios.run import find_max_qps as find_max_qps
    from optieval.bench.scenarios.run import run_scenario as run_scenario
    from optieval.bench.scenarios.run import scenario_cell as scenario_cell
    from optieval.bench.scenarios.spec import CONCURRENCY as CONCURRENCY
    from optieval.bench.scenarios.spec import DEFAULT_SERVER_WORKERS as DEFAULT_SERVER_WORKERS
    from optieval.bench.scenarios.spec import OFFLINE as OFFLINE
    from optieval.bench.scenarios.spec import SCENARIOS as SCENARIOS
    from optieval.bench.scenarios.spec import SERVER as SERVER
    from optieval.bench.scenarios.spec import SINGLE_STREAM as SINGLE_STREAM
    from optieval.bench.scenarios.spec import ScenarioSpec as ScenarioSpec
    from optieval.bench.scenarios.spec import check_scenario_support as check_scenario_support
    from optieval.bench.scenarios.spec import parse_rate_list as parse_rate_list
    from optieval.bench.scenarios.spec import scenario_specs as scenario_specs

_EXPORTS = {
    "CONCURRENCY": "optieval.bench.scenarios.spec",
    "DEFAULT_SERVER_WORKERS": "optieval.bench.scenarios.spec",
    "IssueLag": "optieval.bench.scenarios.results",
    "MaxQpsResult": "optieval.bench.scenarios.results",
    "OFFLINE": "optieval.bench.scenarios.spec",
    "RateTrial": "optieval.bench.scenarios.results",
    "SCENARIOS": "optieval.bench.scenarios.spec",
    "SERVER": "optieval.bench.scenarios.spec",
    "SINGLE_STREAM": "optieval.bench.scenarios.spec",
    "ScenarioResult": "optieval.bench.scenarios.results",
    "ScenarioSpec": "optieval.bench.scenarios.spec",
    "check_scenario_support": "optieval.bench.scenarios.spec",
    "find_max_qps": "optieval.bench.scenarios.run",
    "max_qps_from_cell": "optieval.bench.scenarios.results",
    "parse_rate_list": "optieval.bench.scenarios.spec",
    "run_scenario": "optieval.bench.scenarios.run",
    "scenario_cell": "optieval.bench.scenarios.run",
    "scenario_specs": "optieval.bench.scenarios.spec",
    "sleep_until": "optieval.bench.scenarios.generators",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

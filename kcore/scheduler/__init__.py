"""kcore's scheduling framework: queue, cache, cycle and extension points.

The extension points are the ``kcore_scheduler_*`` hooks in ``kcore.hookspecs``;
the built-in plugins (``kcore.scheduler.plugins``) implement them and are
registered through entry points like any other plugin. Start reading at
``framework.py`` (one scheduling cycle), then ``runner.py`` (the loop that feeds
it from the API), and ``docs/scheduler.md``.
"""

from kcore.scheduler.cache import SchedulerCache
from kcore.scheduler.cycle_state import CycleState
from kcore.scheduler.framework import (
    DEFAULT_PLUGINS,
    DEFAULT_SCHEDULER_NAME,
    FitError,
    Framework,
    Handle,
    ScheduleResult,
    SchedulingError,
    fit_error_message,
    num_feasible_nodes_to_find,
)
from kcore.scheduler.node_info import NodeInfo, PodInfo, pod_key
from kcore.scheduler.queue import QueuedPodInfo, SchedulingQueue
from kcore.scheduler.status import Code, Status, is_success

__all__ = [
    "DEFAULT_PLUGINS", "DEFAULT_SCHEDULER_NAME", "Code", "CycleState", "FitError", "Framework", "Handle",
    "NodeInfo", "PodInfo", "QueuedPodInfo", "ScheduleResult", "SchedulerCache", "SchedulingError",
    "SchedulingQueue", "Status", "fit_error_message", "is_success", "num_feasible_nodes_to_find", "pod_key",
]

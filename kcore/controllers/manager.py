"""The controller manager: every built-in controller on one shared set of informers.

Like kube-controller-manager, it runs the controllers named in
``[controllers] enabled`` ("*" means all) with one API client and one
InformerFactory, so each kind is listed and watched once however many
controllers read it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from kcore.client.events import EventRecorder
from kcore.client.informer import InformerFactory
from kcore.client.rest import ApiClient
from kcore.config import ControllersConfig
from kcore.log import get_logger

log = get_logger("controller-manager")


def _builtin_factories(cfg: ControllersConfig) -> dict[str, Callable[[ApiClient, InformerFactory, EventRecorder], Any]]:
    """Controller name -> constructor. Imports here keep start-up cheap when disabled."""
    from kcore.controllers.deployment import DeploymentController
    from kcore.controllers.endpoints import EndpointsController
    from kcore.controllers.endpointslice import EndpointSliceController
    from kcore.controllers.endpointslice_mirroring import EndpointSliceMirroringController
    from kcore.controllers.garbage_collector import GarbageCollector
    from kcore.controllers.namespace import NamespaceController
    from kcore.controllers.node_lifecycle import NodeLifecycleController
    from kcore.controllers.replicaset import ReplicaSetController, ReplicationControllerController

    return {
        "replicaset": lambda c, f, r: ReplicaSetController(c, f, r),
        "replicationcontroller": lambda c, f, r: ReplicationControllerController(c, f, r),
        "deployment": lambda c, f, r: DeploymentController(c, f, r),
        "garbagecollector": lambda c, f, r: GarbageCollector(c, f),
        "endpoint": lambda c, f, r: EndpointsController(c, f, r),
        "endpointslice": lambda c, f, r: EndpointSliceController(c, f, r),
        "endpointslicemirroring": lambda c, f, r: EndpointSliceMirroringController(c, f, r),
        "namespace": lambda c, f, r: NamespaceController(c, f),
        "nodelifecycle": lambda c, f, r: NodeLifecycleController(
            c, f, config=cfg.node_lifecycle,
            monitor_period_seconds=cfg.node_lifecycle.monitor_period_seconds),
    }


def enabled_names(available: list[str], enabled: list[str]) -> list[str]:
    """Resolve ``enabled`` ("*", "name", "-name") against the available controllers."""
    chosen: list[str] = []
    if "*" in enabled:
        chosen = list(available)
    for item in enabled:
        if item == "*":
            continue
        if item.startswith("-"):
            chosen = [n for n in chosen if n != item[1:]]
        elif item in available and item not in chosen:
            chosen.append(item)
        elif item not in available:
            raise ValueError(f"unknown controller {item!r}; available: {', '.join(available)}")
    return chosen


class ControllerManager:
    """Runs the enabled controllers until stopped."""

    def __init__(self, client: ApiClient, config: ControllersConfig) -> None:
        self.client = client
        self.config = config
        self.factory = InformerFactory(client)
        self.recorder = EventRecorder(client, "kcore-controller-manager")
        factories = _builtin_factories(config)
        self.names = enabled_names(list(factories), config.enabled)
        self.controllers = {name: factories[name](client, self.factory, self.recorder)
                            for name in self.names}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        await self.factory.start()
        for name, controller in self.controllers.items():
            self._tasks.append(asyncio.create_task(controller.run(), name=f"controller {name}"))
        log.info("controllers running", controllers=self.names)
        await self._stopped.wait()

    async def stop(self) -> None:
        for controller in self.controllers.values():
            with contextlib.suppress(Exception):
                await controller.stop()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.factory.stop()
        self._stopped.set()

"""kcore.controllers: one module per controller, each a level-triggered reconcile loop.

Start them from one :class:`~kcore.client.InformerFactory` so they share caches::

    factory = InformerFactory(client)
    recorder = EventRecorder(client, "kcore-controller-manager")
    controllers = [ReplicaSetController(client, factory, recorder),
                   ReplicationControllerController(client, factory, recorder),
                   DeploymentController(client, factory, recorder)]
    await factory.start()
    tasks = [asyncio.create_task(c.run()) for c in controllers]
    ...
    for c in controllers: await c.stop()
    await factory.stop()
"""

from kcore.controllers.deployment import DeploymentController
from kcore.controllers.replicaset import ReplicaSetController, ReplicationControllerController

__all__ = ["DeploymentController", "ReplicaSetController", "ReplicationControllerController"]

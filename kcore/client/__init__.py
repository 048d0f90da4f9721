"""kcore.client: the API client every component uses — REST, informers, work queues,
controllers and event recording, modelled on client-go."""

from kcore.client.controller import Controller
from kcore.client.events import EventRecorder
from kcore.client.informer import (
    INDEX_NAMESPACE,
    INDEX_NODE,
    INDEX_OWNER,
    Indexer,
    Informer,
    InformerFactory,
    object_key,
)
from kcore.client.rest import ApiClient, ApiConnectionError, ApiStatusError, ResourceClient, WatchEvent, bind_pod
from kcore.client.workqueue import QueueShutDown, RateLimiter, WorkQueue

__all__ = [
    "INDEX_NAMESPACE", "INDEX_NODE", "INDEX_OWNER", "ApiClient", "ApiConnectionError", "ApiStatusError",
    "Controller", "EventRecorder", "Indexer", "Informer", "InformerFactory", "QueueShutDown", "RateLimiter",
    "ResourceClient", "WatchEvent", "WorkQueue", "bind_pod", "object_key",
]

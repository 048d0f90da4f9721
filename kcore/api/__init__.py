"""kcore.api: object models, the kinds registry, defaulting and validation.

Only the most used names are re-exported here; kind models live in their group
modules (``kcore.api.core_v1``, ``kcore.api.apps_v1``, ...). Importing this package
stays cheap: the registry module loads the models only when a registry is built.
"""

from kcore.api.base import KubeModel
from kcore.api.meta import KubeObject, ListMeta, ObjectMeta
from kcore.api.registry import KindInfo, KindRegistry, builtin_registry

__all__ = ["KindInfo", "KindRegistry", "KubeModel", "KubeObject", "ListMeta", "ObjectMeta", "builtin_registry"]

"""Every hook is documented in its docstring and in docs/plugins.md, so docs never drift."""

from __future__ import annotations

import inspect
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kcore import hookspecs
from kcore.plugins import create_plugin_host
from kcore.testing import install_fake_distribution

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
FIRSTRESULT_NOTE = "Stops at the first non-None result (firstresult)."


def hook_specs() -> list[tuple[str, Callable[..., Any]]]:
    specs = [
        (name, fn) for name, fn in vars(hookspecs).items()
        if name.startswith("kcore_") and hasattr(fn, f"{hookspecs.PROJECT}_spec")
    ]
    assert len(specs) > 40, "hook specs were not found"
    return specs


def spec_options(fn: Callable[..., Any]) -> dict[str, Any]:
    return dict(getattr(fn, f"{hookspecs.PROJECT}_spec"))


def test_every_kcore_function_is_a_hookspec() -> None:
    unmarked = [
        name for name, fn in vars(hookspecs).items()
        if name.startswith("kcore_") and callable(fn) and not hasattr(fn, f"{hookspecs.PROJECT}_spec")
    ]
    assert unmarked == []


@pytest.mark.parametrize(("name", "fn"), [pytest.param(n, f, id=n) for n, f in hook_specs()])
def test_hookspec_docstring_has_every_part(name: str, fn: Callable[..., Any]) -> None:
    doc = inspect.getdoc(fn) or ""
    assert doc.strip(), f"{name} has no docstring"
    summary, _, body = doc.partition("\n\n")
    assert summary and "\n" not in summary, f"{name}: the first paragraph must be a one-line summary"
    assert "Called" in body, f"{name}: say when kcore calls it"
    for param in inspect.signature(fn).parameters:
        assert f":param {param}:" in doc, f"{name}: parameter {param!r} is not documented"
    assert ":returns:" in doc, f"{name}: the return value is not documented"
    firstresult = spec_options(fn).get("firstresult", False)
    assert (FIRSTRESULT_NOTE in doc) == firstresult, f"{name}: firstresult note does not match the spec"


@pytest.mark.parametrize(("name", "fn"), [pytest.param(n, f, id=n) for n, f in hook_specs()])
def test_hookspec_is_in_the_reference_docs_with_its_signature(name: str, fn: Callable[..., Any]) -> None:
    docs = DOCS.read_text()
    assert re.search(rf"^#+ `{name}`$", docs, re.M), f"docs/plugins.md has no heading for {name}"
    signature = f"def {name}{inspect.signature(fn)}".replace("'", "")
    assert signature in docs, f"docs/plugins.md does not show {name}'s signature: {signature}"
    section = docs.split(f"`{name}`", 1)[1].split("\n#", 1)[0]
    firstresult = spec_options(fn).get("firstresult", False)
    assert (FIRSTRESULT_NOTE in section) == firstresult, f"docs/plugins.md: firstresult note for {name}"


def test_docs_mention_no_hook_that_does_not_exist() -> None:
    documented = set(re.findall(r"^#+ `(kcore_\w+)`$", DOCS.read_text(), re.M))
    assert documented == {name for name, _ in hook_specs()}


def test_the_example_plugin_in_the_docs_works(tmp_path: Path) -> None:
    """The 'Writing a plugin' example, installed from its own pyproject and tested."""
    docs = DOCS.read_text()
    pyproject = tomllib.loads(re.findall(r"```toml\n(.*?)```", docs, re.S)[0])
    module_source, test_source = re.findall(r"```python\n(.*?)```", docs, re.S)[:2]
    project = pyproject["project"]
    with install_fake_distribution(
        tmp_path, project["name"], project["version"],
        entry_points=project["entry-points"],
        modules={"kcore_require_owner": module_source},
    ):
        host = create_plugin_host(groups=["kcore.admission"])
        assert [(r.name, r.distribution, r.status) for r in host.records()] == [
            ("require-owner", "kcore-require-owner", "loaded")
        ]
        namespace: dict[str, Any] = {}
        exec(compile(test_source, "docs/plugins.md example test", "exec"), namespace)  # noqa: S102
        namespace["test_pod_without_owner_is_rejected"]()
        pod = {"object": {"kind": "Pod", "metadata": {"labels": {"owner": "ana"}}}}
        assert host.hook.kcore_admission_validate(request=pod) == []

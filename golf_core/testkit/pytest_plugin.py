"""The pytest side of the test kit (entry point ``pytest11``: ``golf``).

``--golf-contract[=NAMES]`` adds two items per installed plugin, ``golf-contract[NAME-static]``
(``plugin_problems``) and ``golf-contract[NAME-tiny-run]`` (``tiny_run_problems``), to whatever
the session collected; ``-k`` and ``-m`` select among them as usual. A failure prints the
problems, one line each (the first in pytest's short summary). Importing this module imports nothing heavy: every pytest session in
an environment with golf-core loads it.
"""
from __future__ import annotations

import tempfile
from typing import Any, Callable, Iterator

import pytest

ALL = "*"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register ``--golf-contract``."""
    group = parser.getgroup("golf", "golf plugin contract")
    group.addoption("--golf-contract", action="store", nargs="?", const=ALL, default=None, metavar="NAMES",
                    help="check installed golf plugins against the plugin contract: a comma list of "
                         "entry-point names, or none for every installed plugin")


class ContractFailure(Exception):
    """A plugin broke the contract; ``args[0]`` lists the problems."""


class ContractItem(pytest.Item):
    """One contract check (``static`` or ``tiny-run``) of one installed plugin."""

    def __init__(self, *, plugin: str, check: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.plugin, self.check = plugin, check

    def runtest(self) -> None:
        from . import contract

        if self.check == "static":
            problems = contract.plugin_problems(self.plugin)
        else:
            with tempfile.TemporaryDirectory(prefix=f"golf-contract-{self.plugin}-") as tmp:
                problems = contract.tiny_run_problems(self.plugin, tmp)
        if problems:
            raise ContractFailure("\n".join(problems))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        """Contract problems as plain lines; anything else as pytest shows it."""
        if isinstance(excinfo.value, ContractFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"golf contract: {self.plugin} {self.check}"


def _contract_names(option: str) -> list[str]:
    if option != ALL:
        return [n.strip() for n in option.split(",") if n.strip()]
    from golf_core.plugins import PluginRegistry

    return PluginRegistry.discover().names()


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselection, so they apply to the contract items
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Append the contract items ``--golf-contract`` asks for."""
    option = config.getoption("golf_contract")
    if option is None:
        return
    for name in _contract_names(option):
        for check in ("static", "tiny-run"):
            items.append(ContractItem.from_parent(session, name=f"golf-contract[{name}-{check}]",
                                                  plugin=name, check=check))


@pytest.fixture
def golf_registry() -> Iterator[Any]:
    """An empty plugin registry installed as the process-wide one (``reg.add(name, module)``
    adds in-process plugins); the previous registry is restored afterwards."""
    from golf_core import plugins

    old = plugins._REGISTRY
    reg = plugins.PluginRegistry()
    plugins.set_registry(reg)
    try:
        yield reg
    finally:
        plugins.set_registry(old)


@pytest.fixture
def golf_tiny_recipe() -> Callable[..., Any]:
    """``golf_tiny_recipe(["my-plugin"], overrides=[...], options={...})`` -> a ``Recipe``
    that runs in seconds on a CPU (see ``golf_core.testkit.tiny_recipe``)."""
    from .contract import tiny_recipe

    return tiny_recipe


@pytest.fixture(scope="session")
def golf_demo_data() -> Any:
    """The vocab-1024 demo dataset (``DataPaths``), built once (cached under ``GOLF_DATA_DIR``)."""
    from golf_core.config import DataSection
    from golf_core.data.paths import resolve_data

    return resolve_data(DataSection(source="demo", vocab_size=1024), build_missing=True)

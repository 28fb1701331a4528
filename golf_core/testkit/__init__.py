"""golf's test kit for plugin authors: the plugin contract and pytest fixtures.

It ships with golf-core as a pytest plugin (entry point ``pytest11`` named ``golf``; disable with
``-p no:golf``), so any project with golf-core installed can:

* run the contract on installed plugins: ``pytest --golf-contract=embed-scale`` (a comma list;
  ``--golf-contract`` alone checks every installed plugin);
* call it from its own tests: ``assert not plugin_problems("embed-scale")`` and
  ``assert not tiny_run_problems("embed-scale", tmp_path)``;
* use the fixtures ``golf_registry`` (an empty in-process registry), ``golf_tiny_recipe``
  (a factory for a ``--tiny`` recipe of some plugins) and ``golf_demo_data`` (the demo dataset).
"""
from .contract import CARD_SECTIONS, method_card, plugin_problems, tiny_recipe, tiny_run_problems

__all__ = ["CARD_SECTIONS", "method_card", "plugin_problems", "tiny_recipe", "tiny_run_problems"]
